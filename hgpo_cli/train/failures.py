"""Trajectories cut short by a failed environment worker: left out of training and of the group statistics.

A worker that dies mid-episode ends each episode it held with a StepResult marked ``worker_failed``
(see ``hgpo_cli.envs.pool``): the rollout records that last step with ``extra["worker_failed"]`` and
marks the episode. Such a trajectory did not fail the task, the machine did; scored 0 it would pull its
group's mean down and push its siblings' advantages up. verl-agent has no such case (its workers do not
restart), so we drop the trajectory before the advantages: its steps are neither trained on nor counted
in any group (episode, step or history level). The episodes stay in the result, so success rates and
``rollout/worker_failed_episodes`` still count and log them as before; the iteration's rollout file
(``rollouts/iter_*.jsonl``) holds the kept steps only, and ``batch/worker_failed_steps_dropped`` counts the rest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hgpo_cli.agent.records import StepRecord

__all__ = ["failed_trajectories", "without_failed_trajectories"]


def failed_trajectories(records: list[StepRecord], episodes: list[Any] = ()) -> set[str]:
    """traj_ids of the trajectories a failed worker cut short: any step with ``extra["worker_failed"]``
    or an episode (with ``traj_id`` and ``worker_failed`` attributes) marked so."""
    failed = {r.traj_id for r in records if r.extra.get("worker_failed")}
    failed |= {e.traj_id for e in episodes if getattr(e, "worker_failed", False)}
    return failed


def without_failed_trajectories(result: Any) -> tuple[Any, int]:
    """A copy of a RolloutResult whose records leave out every step of a failed trajectory (episodes and
    counters unchanged), and the number of steps left out."""
    failed = failed_trajectories(result.records, result.episodes)
    if not failed:
        return result, 0
    kept = [r for r in result.records if r.traj_id not in failed]
    return replace(result, records=kept), len(result.records) - len(kept)
