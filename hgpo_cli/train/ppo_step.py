"""The PPO phases of an iteration (`algorithm.name=ppo`): values, per-token GAE advantages, critic update.

The trainer calls these between the log-probs and the policy update, in verl's order: values, advantages,
critic update, then the actor (skipped while `critic.warmup` > the 1-based iteration, as verl's
`trainer.critic_warmup`). The math is `hgpo_cli.train.gae`; the value model `hgpo_cli.train.critic_worker`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hgpo_cli.train.batch import TrainSample
from hgpo_cli.train.gae import step_sample_gae


def attach_gae(
    samples: list[TrainSample], values: list[list[float]], gamma: float, lam: float
) -> tuple[list[list[float]], dict[str, float]]:
    """Give every sample its per-token advantages (whitened over the batch) and return the GAE returns.

    samples[i].advantage holds the step sample's reward on entry (its penalised episode score, which
    `advantages_for` puts there for ppo) and the mean of its token advantages on exit (for logs).
    values: (R_i,) per sample, the critic's values. -> (returns (R_i,) per sample, metrics).
    """
    rewards = np.array([s.advantage for s in samples], dtype=np.float64)
    advantages, returns = step_sample_gae(rewards, values, gamma=gamma, lam=lam, whiten=True)
    for sample, adv in zip(samples, advantages, strict=True):
        sample.token_advantages = adv.tolist()
        sample.advantage = float(adv.mean()) if adv.size else 0.0
    flat_v = np.concatenate([np.asarray(v, dtype=np.float64) for v in values]) if values else np.zeros(0)
    flat_r = np.concatenate(returns) if returns else np.zeros(0)
    flat_a = np.concatenate(advantages) if advantages else np.zeros(0)
    metrics: dict[str, float] = {}
    if flat_r.size:
        # as verl's compute_data_metrics: explained variance 1 - var(R - V) / (var(R) + 1e-5)
        metrics = {
            "critic/score_mean": float(rewards.mean()),
            "critic/returns_mean": float(flat_r.mean()),
            "critic/values_mean": float(flat_v.mean()),
            "critic/advantages_mean": float(flat_a.mean()),
            "critic/advantages_max": float(flat_a.max()),
            "critic/advantages_min": float(flat_a.min()),
            "critic/vf_explained_var": float(1.0 - np.var(flat_r - flat_v) / (np.var(flat_r) + 1e-5)),
        }
    return [r.tolist() for r in returns], metrics


def critic_values(critic: Any, samples: list[TrainSample]) -> list[list[float]]:
    """The critic actor's values of each sample's response tokens."""
    import ray

    return ray.get(critic.values.remote(ray.put(samples)))


def critic_update(
    critic: Any, samples: list[TrainSample], values: list[list[float]], returns: list[list[float]]
) -> dict[str, float]:
    """One critic update on the batch (verl's update_critic); returns its critic/* metrics."""
    import ray

    return ray.get(critic.update.remote(ray.put(samples), values, returns))


def actor_trains(iteration: int, warmup: int) -> bool:
    """verl's rule: the actor is updated at 1-based iteration `iteration` when `critic_warmup <= iteration`."""
    return warmup <= iteration
