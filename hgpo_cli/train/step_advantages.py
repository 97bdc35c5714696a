"""From recorded steps to one advantage per step: returns, invalid-action penalty, then the estimator.

Arrays in, arrays out; the config only chooses the estimator and its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hgpo_cli.agent.records import StepRecord
from hgpo_cli.train.advantages import (
    apply_invalid_penalty,
    compute_advantages,
    discounted_returns,
    estimator_params,
    group_stats,
)
from hgpo_cli.train.gae import uses_critic


@dataclass
class StepArrays:
    """Per-step columns, (N,) each, in record order."""

    group_ids: np.ndarray
    traj_ids: np.ndarray
    anchors: np.ndarray
    rewards: np.ndarray
    valid: np.ndarray


RewardMap = float | Callable[[float], float]


def training_rewards(records: list[StepRecord], reward_scale: RewardMap = 1.0) -> np.ndarray:
    """(N,) the training reward of each step: `reward_scale(r)` when it is a callable (a suite's
    `training_reward`, e.g. WebShop's binary 10 x [r == 1]), else `reward_scale * r`."""
    if callable(reward_scale):
        return np.array([reward_scale(r.reward) for r in records], dtype=np.float64)
    return np.array([r.reward * reward_scale for r in records], dtype=np.float64)


def step_arrays(records: list[StepRecord], reward_scale: RewardMap = 1.0) -> StepArrays:
    return StepArrays(
        group_ids=np.array([r.group_id for r in records], dtype=object),
        traj_ids=np.array([r.traj_id for r in records], dtype=object),
        anchors=np.array([r.anchor for r in records], dtype=object),
        rewards=training_rewards(records, reward_scale),
        valid=np.array([r.valid for r in records], dtype=bool),
    )


def estimator_kwargs(algorithm: dict[str, Any]) -> dict[str, Any]:
    """The parameters the configured estimator takes, picked from the `algorithm` config section."""
    flat = {
        "norm": algorithm["norm"],
        "eps": algorithm["eps"],
        "episode_stats": algorithm["episode_stats"],
        "step_advantage_w": algorithm["gigpo"]["step_advantage_w"],
        **{k: algorithm["hgpo"][k] for k in ("history_length", "alpha", "weighting", "base_group")},
    }
    return {name: flat[name] for name in estimator_params(algorithm["name"])}


@dataclass
class AdvantageResult:
    advantages: np.ndarray  # (N,)
    returns: np.ndarray  # (N,) penalised discounted returns
    scores: np.ndarray  # (N,) penalised episode scores
    levels: dict[int, dict[str, Any]]


def advantages_for(
    records: list[StepRecord], algorithm: dict[str, Any], reward_scale: RewardMap = 1.0
) -> AdvantageResult:
    """Step returns (gamma), penalty, then the estimator named in `algorithm["name"]`."""
    cols = step_arrays(records, reward_scale)
    returns = discounted_returns(cols.rewards, cols.traj_ids, algorithm["gamma"])
    codes = {t: i for i, t in enumerate(dict.fromkeys(cols.traj_ids.tolist()))}
    traj_codes = np.array([codes[t] for t in cols.traj_ids.tolist()], dtype=np.int64)
    episode_rewards = np.bincount(traj_codes, weights=cols.rewards)[traj_codes]
    returns, scores = apply_invalid_penalty(returns, episode_rewards, cols.valid, algorithm["invalid_action_penalty"])
    if uses_critic(algorithm["name"]):
        # ppo: the step sample's reward (its penalised episode score, at its last token); the per-token
        # advantages come from GAE once the critic's values are in (hgpo_cli.train.ppo_step)
        levels = group_stats(cols.group_ids, cols.traj_ids, cols.anchors, algorithm["hgpo"]["history_length"])
        return AdvantageResult(advantages=scores.copy(), returns=returns, scores=scores, levels=levels)
    adv = compute_advantages(
        algorithm["name"],
        group_ids=cols.group_ids,
        traj_ids=cols.traj_ids,
        step_returns=returns,
        episode_scores=scores,
        anchors=cols.anchors,
        **estimator_kwargs(algorithm),
    )
    levels = group_stats(cols.group_ids, cols.traj_ids, cols.anchors, algorithm["hgpo"]["history_length"])
    return AdvantageResult(advantages=adv, returns=returns, scores=scores, levels=levels)
