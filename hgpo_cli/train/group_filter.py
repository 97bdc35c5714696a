"""Group filtering / dynamic sampling (`algorithm.filter_groups.enable`), as verl-agent's GiGPO-dynamic.

verl-agent (`agent_system/multi_turn_rollout/rollout_loop.py: dynamic_multi_turn_loop`,
`agent_system/multi_turn_rollout/utils.py: filter_group_data`), adopted from DAPO:
- one try rolls out a fresh batch of `train_batch_size` tasks x `group_size` environments;
- a task group whose trajectories all have the same episode reward (the summed environment reward,
  before any invalid-action penalty) carries no signal and is dropped;
- tries repeat while the kept trajectories number fewer than train_batch_size x group_size and fewer than
  `max_num_gen_batches` tries have run; the last allowed try is kept whole, unfiltered;
- the kept groups of all tries are the batch, not cut back to train_batch_size (it can hold more).

Here a group is judged on its trajectories that did not lose their environment worker (those are left
out of training anyway); a group with fewer than two such trajectories has no signal. The functions
below are pure (lists and dataclasses in, out); the loop that rolls out is `Trainer.iteration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hgpo_cli.train.rollout import RolloutResult
from hgpo_cli.train.step_advantages import RewardMap, training_rewards


def groups_with_signal(
    group_ids: Sequence[str], episode_rewards: Sequence[float], failed: Sequence[bool] | None = None
) -> list[str]:
    """The task groups whose trajectories do not all share one episode reward, in order of first appearance.

    group_ids, episode_rewards, failed: (T,) one entry per trajectory (failed: it lost its environment
    worker; left out of the comparison). Rewards are compared exactly, as verl-agent does.
    """
    if failed is None:
        failed = [False] * len(group_ids)
    if not len(group_ids) == len(episode_rewards) == len(failed):
        raise ValueError("group_ids, episode_rewards and failed must have one entry per trajectory")
    rewards: dict[str, list[float]] = {}
    for gid, reward, bad in zip(group_ids, episode_rewards, failed, strict=True):
        bucket = rewards.setdefault(gid, [])
        if not bad:
            bucket.append(float(reward))
    return [gid for gid, values in rewards.items() if len(set(values)) > 1]


def keep_groups(result: RolloutResult, keep: Sequence[str]) -> RolloutResult:
    """The part of a rollout that belongs to the groups in `keep` (records, episodes and their tokens)."""
    wanted = set(keep)
    records = [r for r in result.records if r.group_id in wanted]
    return RolloutResult(
        records=records,
        episodes=[e for e in result.episodes if e.group_id in wanted],
        prompt_tokens=sum(len(r.extra.get("prompt_ids", ())) for r in records),
        response_tokens=sum(len(r.extra.get("response_ids", ())) for r in records),
        truncated_prompts=result.truncated_prompts,  # counted per rollout, not per group
    )


def merge_results(results: Sequence[RolloutResult]) -> RolloutResult:
    """One rollout result holding the records and episodes of several, in order."""
    merged = RolloutResult()
    for part in results:
        merged.records.extend(part.records)
        merged.episodes.extend(part.episodes)
        merged.prompt_tokens += part.prompt_tokens
        merged.response_tokens += part.response_tokens
        merged.truncated_prompts += part.truncated_prompts
    return merged


def episode_training_rewards(result: RolloutResult, reward_map: RewardMap = 1.0) -> list[float]:
    """(T,) each episode's summed *training* reward, in the order of `result.episodes`: verl-agent filters on
    the reward the policy is trained on, so with WebShop's binary reward two purchases scoring 0.5 and 0.8
    are the same (0) and their group carries no signal."""
    per_step = training_rewards(result.records, reward_map)
    totals: dict[str, float] = {}
    for record, reward in zip(result.records, per_step, strict=True):
        totals[record.traj_id] = totals.get(record.traj_id, 0.0) + float(reward)
    return [totals.get(e.traj_id, 0.0) for e in result.episodes]


@dataclass
class FilterLog:
    """What dynamic sampling did in one iteration."""

    tries: int = 0
    groups_rolled: int = 0  # task groups rolled out over all tries
    groups_with_signal: int = 0  # of those, the ones whose episode rewards differ
    groups_kept: int = 0  # groups in the batch (signal ones, plus the whole last try when it was reached)
    episodes_rolled: int = 0
    episodes_won: int = 0

    def metrics(self) -> dict[str, float]:
        rolled = max(1, self.groups_rolled)
        return {
            "rollout/filter_tries": float(self.tries),
            "rollout/groups_rolled": float(self.groups_rolled),
            "rollout/groups_kept": float(self.groups_kept),
            "rollout/groups_kept_fraction": self.groups_kept / rolled,
            "rollout/groups_with_signal_fraction": self.groups_with_signal / rolled,
            "rollout/success_rate_all_tries": self.episodes_won / max(1, self.episodes_rolled),
        }


class GroupFilter:
    """Accumulates the tries of one iteration: `add(result)` after each rollout, `done` says when to stop.

    target_groups: train_batch_size. max_tries: max_num_gen_batches (>= 1); try number max_tries is kept
    whole. group_size: environments per task (the batch is full at target_groups x group_size
    trajectories, as verl-agent counts it).
    """

    def __init__(self, target_groups: int, group_size: int, max_tries: int, reward_map: RewardMap = 1.0) -> None:
        """reward_map: the run's training reward of an environment reward (`Trainer.reward_scale`)."""
        if max_tries < 1:
            raise ValueError("max_tries must be >= 1")
        self.target_trajectories = target_groups * group_size
        self.max_tries = max_tries
        self.reward_map = reward_map
        self.parts: list[RolloutResult] = []
        self.log = FilterLog()

    @property
    def kept_trajectories(self) -> int:
        return sum(len(p.episodes) for p in self.parts)

    @property
    def done(self) -> bool:
        return self.kept_trajectories >= self.target_trajectories or self.log.tries >= self.max_tries

    def add(self, result: RolloutResult) -> RolloutResult:
        """Filter one try's rollout (the last allowed try passes whole) and keep what remains; returns it."""
        self.log.tries += 1
        order = list(dict.fromkeys(e.group_id for e in result.episodes))
        signal = groups_with_signal(
            [e.group_id for e in result.episodes],
            episode_training_rewards(result, self.reward_map),
            [e.worker_failed for e in result.episodes],
        )
        keep = order if self.log.tries >= self.max_tries else signal
        kept = keep_groups(result, keep)
        self.parts.append(kept)
        self.log.groups_rolled += len(order)
        self.log.groups_with_signal += len(signal)
        self.log.groups_kept += len(keep)
        self.log.episodes_rolled += len(result.episodes)
        self.log.episodes_won += sum(bool(e.won) for e in result.episodes)
        return kept

    def batch(self) -> RolloutResult:
        """The kept groups of all tries, as one rollout result."""
        return merge_results(self.parts)
