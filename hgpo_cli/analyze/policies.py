"""Policies that act on the last K observations plus the current one, as the agent's memory does.

A policy on a chain (`pomdp.build_chain`) is an array probs (W, A): pi(a | w) for each of the chain's W
windows, zero on actions the window's current observation does not admit. Three kinds:

* random: uniform over the admissible actions.
* scripted: a fixed heuristic with memory, "QMDP on the window": the action that maximises the
  fully observable optimal Q averaged over the hidden states the window is visited in (its state
  posterior under an eps-greedy oracle that sees the state), taken with probability 1 - eps, else
  uniform. Competent, imperfect, stochastic: the regime in which advantages matter.
* softmax: a table of logits (W, A) -> softmax over admissible actions; `random_logits` gives a
  seeded random one, `learn.py` trains them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hgpo_cli.analyze.exact import occupancy
from hgpo_cli.analyze.pomdp import Chain, Model, _parse_value
from hgpo_cli.errors import UserError

FloatArray = npt.NDArray[np.float64]
MASKED = -1e9  # logit of an inadmissible action


def uniform_probs(chain: Chain) -> FloatArray:
    """(W, A): uniform over each window's admissible actions."""
    adm = chain.window_admissible.astype(np.float64)
    return adm / adm.sum(1, keepdims=True)


def softmax_probs(chain: Chain, logits: npt.ArrayLike) -> FloatArray:
    """(W, A): softmax of logits (W, A) over each window's admissible actions."""
    z = np.where(chain.window_admissible, np.asarray(logits, dtype=np.float64), -np.inf)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def random_logits(chain: Chain, scale: float, seed: int) -> FloatArray:
    """(W, A) logits drawn N(0, scale^2), seeded (MASKED on inadmissible actions)."""
    rng = np.random.default_rng(seed)
    return np.where(chain.window_admissible, rng.normal(0.0, scale, chain.window_admissible.shape), MASKED)


def mdp_q(model: Model, gamma: float, iters: int = 2000) -> FloatArray:
    """(S, A): optimal Q of the fully observable MDP (discounted, no horizon), by value iteration;
    -inf on inadmissible actions and on terminal states."""
    adm = np.zeros((model.n_states, model.n_actions), bool)
    live = model.state_obs >= 0
    adm[live] = model.admissible[model.state_obs[live]]
    v = np.zeros(model.n_states)
    q = np.zeros_like(adm, dtype=np.float64)
    for _ in range(iters):
        q = model.T @ (model.enter_reward + gamma * v * ~model.terminal)  # (S, A)
        new_v = np.where(adm, q, -np.inf).max(1, initial=-np.inf)
        new_v = np.where(live, new_v, 0.0)
        if np.max(np.abs(new_v - v)) < 1e-12:
            v = new_v
            break
        v = new_v
    return np.where(adm, q, -np.inf)


def scripted_probs(chain: Chain, gamma: float = 0.95, eps: float = 0.5) -> FloatArray:
    """(W, A): eps-greedy QMDP over the window's hidden-state posterior (module docstring).

    The posterior p(s | w) is proportional to the visits of (s, w) by the eps-greedy oracle that sees the
    hidden state and plays the optimal MDP action (plus 1e-3 times the visits of the random policy, so
    that windows the oracle never reaches still get one), summed over tasks and steps; the window's
    action is argmax_a sum_s p(s | w) Q_MDP(s, a).
    """
    if not 0 <= eps <= 1:
        raise UserError(f"scripted policy eps must be in [0, 1], got {eps}")
    q_mdp = mdp_q(chain.model, gamma)
    q_x = np.where(np.isfinite(q_mdp), q_mdp, 0.0)[chain.x_state]  # (X, A)
    uniform = uniform_probs(chain)
    adm_x = chain.window_admissible[chain.x_window]
    best = np.where(adm_x, q_x, -np.inf).argmax(1)
    oracle = eps * uniform[chain.x_window]
    oracle[np.arange(chain.n_x), best] += 1 - eps
    visits = occupancy(chain, pi_x=oracle).sum(axis=(0, 1)) + 1e-3 * occupancy(chain, uniform).sum(axis=(0, 1))
    score = np.zeros((chain.n_windows, chain.model.n_actions))
    np.add.at(score, chain.x_window, visits[:, None] * q_x)
    score = np.where(chain.window_admissible, score, -np.inf)
    probs = eps * uniform
    probs[np.arange(chain.n_windows), score.argmax(1)] += 1 - eps
    return probs


@dataclass(frozen=True)
class PolicySpec:
    """A named policy kind with its options; `probs(chain)` builds it on a chain."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return self.kind + (f":{opts}" if opts else "")

    def probs(self, chain: Chain, gamma: float = 0.95) -> FloatArray:
        """(W, A) action probabilities of this policy on `chain`."""
        builder = POLICIES[self.kind][0]
        try:
            return builder(chain, gamma, **self.options)
        except TypeError as err:
            raise UserError(f"policy {self.label!r}: {err}") from None


POLICIES: dict[str, tuple[Callable[..., FloatArray], str]] = {
    "random": (lambda chain, gamma: uniform_probs(chain), "uniform over admissible actions"),
    "scripted": (
        lambda chain, gamma, eps=0.5: scripted_probs(chain, gamma, eps),
        "eps-greedy QMDP on the window's state posterior (eps=0.5)",
    ),
    "softmax": (
        lambda chain, gamma, scale=1.0, seed=0: softmax_probs(chain, random_logits(chain, scale, seed)),
        "a random softmax table, logits N(0, scale^2) (scale=1, seed=0)",
    ),
}


def make_policy(spec: str) -> PolicySpec:
    """A policy from "KIND" or "KIND:key=value,..." (random, scripted[:eps=..], softmax[:scale=..,seed=..])."""
    kind, _, rest = spec.partition(":")
    if kind not in POLICIES:
        raise UserError(f"unknown analyze policy {kind!r} (one of: {', '.join(POLICIES)})")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"policy option {item!r} in {spec!r} is not key=value")
        options[key.strip()] = _parse_value(value)
    return PolicySpec(kind, options)
