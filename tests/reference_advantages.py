"""Readable loop implementations of the advantage estimators: the oracle for the vectorised ones.

One step at a time, dicts of lists, no numpy tricks. They follow `shared/spec/method.md` directly and
use the same floating-point recipe as `hgpo_cli.train.advantages` (group mean = first member +
mean of the differences to it, sums accumulated in order of appearance), so results agree to the last
bit except where noted (RLOO sums the other trajectories in a different order).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any


def _mean_std(values: Sequence[float], ddof: int) -> tuple[float, float, float]:
    """(ref, shift, std): mean = ref + shift with ref = values[0]; std = sqrt(sum dev^2 / (n - ddof))."""
    ref = values[0]
    diffs = [v - ref for v in values]
    total = 0.0
    for d in diffs:
        total += d
    shift = total / len(values)
    ss = 0.0
    for d in diffs:
        dev = d - shift
        ss += dev * dev
    n = len(values) - ddof
    std = math.sqrt(ss / n) if n > 0 else 0.0
    return ref, shift, std


def _norm(x: float, stats: tuple[float, float, float], norm: str, eps: float) -> float:
    ref, shift, std = stats
    dev = (x - ref) - shift
    return dev if norm == "mean_norm" else dev / (std + eps)


def _trajectories(group_ids: Sequence[Hashable], traj_ids: Sequence[Hashable]) -> dict[tuple, list[int]]:
    """(group, traj) -> the step indices of that trajectory in time order; dict order = first appearance."""
    trajs: dict[tuple, list[int]] = {}
    for i, (g, t) in enumerate(zip(group_ids, traj_ids, strict=True)):
        trajs.setdefault((g, t), []).append(i)
    return trajs


def episode_advantage(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    episode_scores: Sequence[float],
    norm: str,
    eps: float,
    episode_stats: str,
) -> list[float]:
    """A_E per step (GRPO)."""
    n = len(group_ids)
    out = [0.0] * n
    if episode_stats == "steps":
        members: dict[Hashable, list[int]] = {}
        for i, g in enumerate(group_ids):
            members.setdefault(g, []).append(i)
        for idx in members.values():
            vals = [float(episode_scores[i]) for i in idx]
            stats = (0.0, 0.0, 1.0) if len(vals) == 1 else _mean_std(vals, ddof=1)
            for i in idx:
                out[i] = _norm(float(episode_scores[i]), stats, norm, eps)
        return out
    traj_score: dict[Hashable, list[tuple[tuple, float]]] = {}
    trajs = _trajectories(group_ids, traj_ids)
    for key, idx in trajs.items():
        ref, shift, _ = _mean_std([float(episode_scores[i]) for i in idx], ddof=0)
        traj_score.setdefault(key[0], []).append((key, ref + shift))
    for items in traj_score.values():
        vals = [s for _, s in items]
        stats = (0.0, 0.0, 1.0) if len(vals) == 1 else _mean_std(vals, ddof=1)
        for key, _ in items:
            for i in trajs[key]:
                out[i] = _norm(float(episode_scores[i]), stats, norm, eps)
    return out


def grpo(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    step_returns: Sequence[float],
    episode_scores: Sequence[float],
    anchors: Sequence[Hashable],
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    episode_stats: str = "steps",
) -> list[float]:
    return episode_advantage(group_ids, traj_ids, episode_scores, norm, eps, episode_stats)


def gigpo(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    step_returns: Sequence[float],
    episode_scores: Sequence[float],
    anchors: Sequence[Hashable],
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    episode_stats: str = "steps",
    step_advantage_w: float = 1.0,
) -> list[float]:
    a_e = episode_advantage(group_ids, traj_ids, episode_scores, norm, eps, episode_stats)
    step_groups: dict[tuple, list[int]] = {}
    for i, (g, a) in enumerate(zip(group_ids, anchors, strict=True)):
        step_groups.setdefault((g, a), []).append(i)
    a_s = [0.0] * len(group_ids)
    for idx in step_groups.values():
        if len(idx) < 2:
            continue
        stats = _mean_std([float(step_returns[i]) for i in idx], ddof=1)
        for i in idx:
            a_s[i] = _norm(float(step_returns[i]), stats, norm, eps)
    return [e + step_advantage_w * s for e, s in zip(a_e, a_s, strict=True)]


def context_groups(
    group_ids: Sequence[Hashable], traj_ids: Sequence[Hashable], anchors: Sequence[Hashable], k: int
) -> dict[tuple, list[int]]:
    """Level-k groups: (group, (anchor_{t-k}, ..., anchor_t)) -> step indices in order of appearance."""
    position: list[int] = [0] * len(group_ids)
    history: list[list[Hashable]] = [[] for _ in group_ids]
    seen: dict[tuple, list[Hashable]] = {}
    for i, (g, t, a) in enumerate(zip(group_ids, traj_ids, anchors, strict=True)):
        past = seen.setdefault((g, t), [])
        past.append(a)
        position[i] = len(past) - 1
        history[i] = past  # only appended to later, so past[: position + 1] stays this step's history
    groups: dict[tuple, list[int]] = {}
    for i, g in enumerate(group_ids):
        if position[i] < k:
            continue
        context = tuple(history[i][position[i] - k : position[i] + 1])
        groups.setdefault((g, context), []).append(i)
    return groups


def hgpo(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    step_returns: Sequence[float],
    episode_scores: Sequence[float],
    anchors: Sequence[Hashable],
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    history_length: int = 2,
    alpha: float = 1.0,
    weighting: str = "recipe",
    base_group: bool = False,
    episode_stats: str = "steps",
) -> list[float]:
    n = len(group_ids)
    items: list[list[tuple[float, float]]] = [[] for _ in range(n)]  # (weight, A_k) per step
    for k in range(history_length + 1):
        w = (k + (2.0 if weighting == "recipe" else 1.0)) ** float(alpha)
        for idx in context_groups(group_ids, traj_ids, anchors, k).values():
            if len(idx) < 2:
                continue
            stats = _mean_std([float(step_returns[i]) for i in idx], ddof=0)
            for i in idx:
                items[i].append((w, _norm(float(step_returns[i]), stats, norm, eps)))
    if base_group:
        a_e = episode_advantage(group_ids, traj_ids, episode_scores, norm, eps, episode_stats)
        for i in range(n):
            items[i].append((1.0, a_e[i]))
    out = []
    for step_items in items:
        num = 0.0
        den = 0.0
        for w, a in step_items:
            if a != 0.0:
                num += w * a
                den += w
        out.append(num / (den + eps) if den > 0 else 0.0)
    return out


def rloo(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    step_returns: Sequence[float],
    episode_scores: Sequence[float],
    anchors: Sequence[Hashable],
) -> list[float]:
    trajs = _trajectories(group_ids, traj_ids)
    score: dict[tuple, float] = {}
    for key, idx in trajs.items():
        ref, shift, _ = _mean_std([float(episode_scores[i]) for i in idx], ddof=0)
        score[key] = ref + shift
    by_group: dict[Hashable, list[tuple]] = {}
    for key in trajs:
        by_group.setdefault(key[0], []).append(key)
    out = [0.0] * len(group_ids)
    for key, idx in trajs.items():
        others = [score[other] for other in by_group[key[0]] if other != key]
        if not others:
            continue
        ref, shift, _ = _mean_std(others, ddof=0)
        baseline = ref + shift
        for i in idx:
            out[i] = float(episode_scores[i]) - baseline
    return out


ESTIMATORS: dict[str, Any] = {"grpo": grpo, "gigpo": gigpo, "hgpo": hgpo, "rloo": rloo}


def discounted_returns(rewards: Sequence[float], traj_ids: Sequence[Hashable], gamma: float) -> list[float]:
    steps: dict[Hashable, list[int]] = {}
    for i, t in enumerate(traj_ids):
        steps.setdefault(t, []).append(i)
    out = [0.0] * len(rewards)
    for idx in steps.values():
        acc = 0.0
        for i in reversed(idx):
            acc = float(rewards[i]) + gamma * acc
            out[i] = acc
    return out


def group_stats(
    group_ids: Sequence[Hashable],
    traj_ids: Sequence[Hashable],
    anchors: Sequence[Hashable],
    history_length: int,
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for k in range(history_length + 1):
        groups = context_groups(group_ids, traj_ids, anchors, k)
        hist: dict[int, int] = {}
        for idx in groups.values():
            hist[len(idx)] = hist.get(len(idx), 0) + 1
        out[k] = {
            "groups": len(groups),
            "steps": sum(len(idx) for idx in groups.values()),
            "steps_grouped": sum(len(idx) for idx in groups.values() if len(idx) >= 2),
            "size_hist": dict(sorted(hist.items())),
        }
    return out
