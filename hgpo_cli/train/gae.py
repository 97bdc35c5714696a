"""PPO with a critic (`algorithm.name=ppo`): token-level GAE over each step sample, as verl computes it.

Pure numpy; the critic that produces the values is `hgpo_cli.train.critic_worker`.

How verl-agent runs its PPO row (`examples/ppo_trainer/run_*.sh`, `algorithm.adv_estimator=gae`):
- every step sample is its own sequence; its reward sits at its **last response token** and is the
  trajectory's whole episode reward (undiscounted) minus this step's invalid-action penalty
  (`agent_system/reward_manager/episode.py`, `apply_invalid_action_penalty` in `ray_trainer.py`), i.e.
  `AdvantageResult.scores` here. All other tokens get reward 0.
- GAE (`core_algos.compute_gae_advantage_return`) runs per step sample over its response tokens; nothing
  is bootstrapped from the next step of the trajectory. `gamma`, `lam` are verl's `algorithm.gamma` /
  `algorithm.lam`, both 1.0 by default and in the PPO scripts: then every token's return is the step
  sample's reward and its advantage is `reward - V_t`.
- returns = advantages + values (before whitening); the advantages are then whitened over all response
  tokens of the batch (`masked_whiten`: mean, unbiased variance, `(x - mean) / sqrt(var + 1e-8)`).
- value t of a response is the critic's output at the position before token t (the state the token was
  sampled from).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# algorithm names that are not registry estimators: they need the critic's values (hgpo_cli.train.critic_worker)
CRITIC_ALGORITHMS: tuple[str, ...] = ("ppo",)
WHITEN_EPS = 1e-8  # verl's masked_whiten: rsqrt(var + 1e-8)
MEAN_EPS = 1e-8  # verl's masked_mean: sum / (count + 1e-8)


def uses_critic(name: str) -> bool:
    """True for the algorithms that train a value model (today: ppo)."""
    return name in CRITIC_ALGORITHMS


def gae_advantages_returns(
    token_rewards: npt.ArrayLike, values: npt.ArrayLike, gamma: float, lam: float
) -> tuple[FloatArray, FloatArray]:
    """Generalised advantage estimation over padded responses, verl's recursion.

    token_rewards, values: (B, T), responses left-aligned (token t of row b at column t), zeros after a
    response's end. delta_t = r_t + gamma V_{t+1} - V_t (V_T = 0), A_t = delta_t + gamma lam A_{t+1}.
    -> (advantages (B, T), returns (B, T) = advantages + values), neither whitened nor masked.
    """
    r = np.asarray(token_rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim != 2:
        raise ValueError(f"token_rewards {r.shape} and values {v.shape} must both be (B, T)")
    adv = np.zeros_like(r)
    last = np.zeros(r.shape[0])
    for t in range(r.shape[1] - 1, -1, -1):
        next_v = v[:, t + 1] if t + 1 < r.shape[1] else 0.0
        delta = r[:, t] + gamma * next_v - v[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    return adv, adv + v


def masked_whiten(x: npt.ArrayLike, mask: npt.ArrayLike) -> FloatArray:
    """verl's masked_whiten: (x - mean) / sqrt(var + 1e-8) with the mean and the unbiased variance over
    the masked entries (all axes). x, mask: same shape -> same shape. With fewer than 2 masked entries
    (where verl raises) the entries are only centred."""
    a = np.asarray(x, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    n = m.sum()
    mean = (a * m).sum() / (n + MEAN_EPS)
    if n < 2:
        return a - mean
    var = ((a - mean) ** 2 * m).sum() / (n + MEAN_EPS) * (n / (n - 1))
    return (a - mean) / np.sqrt(var + WHITEN_EPS)


def step_sample_gae(
    rewards: npt.ArrayLike,
    values: Sequence[npt.ArrayLike],
    *,
    gamma: float = 1.0,
    lam: float = 1.0,
    whiten: bool = True,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per-token advantages and returns of a batch of step samples, as verl-agent's PPO row.

    rewards: (B,) each step sample's reward (episode reward minus its invalid-action penalty), placed at
    its last response token. values: B arrays, (R_b,) the critic's values of sample b's response tokens.
    -> (advantages, returns): B arrays of shape (R_b,); the advantages whitened over all B samples'
    tokens when `whiten` (verl always does), the returns never.
    """
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    vals = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    if len(vals) != r.size:
        raise ValueError(f"{r.size} rewards but {len(vals)} value rows")
    lengths = np.array([v.size for v in vals], dtype=np.int64)
    width = max(1, int(lengths.max(initial=0)))
    mask = np.arange(width)[None, :] < lengths[:, None]
    padded_v = np.zeros((r.size, width))
    token_r = np.zeros((r.size, width))
    for b, v in enumerate(vals):
        padded_v[b, : v.size] = v
        if v.size:
            token_r[b, v.size - 1] = r[b]
    adv, ret = gae_advantages_returns(token_r, padded_v, gamma, lam)
    if whiten:
        adv = masked_whiten(adv, mask)
    return [adv[b, :n] for b, n in enumerate(lengths)], [ret[b, :n] for b, n in enumerate(lengths)]
