"""Dynamic sampling on scripted groups: which groups carry signal, the try loop, the last try kept whole."""

from __future__ import annotations

from hgpo_cli.agent.records import StepRecord
from hgpo_cli.train.group_filter import GroupFilter, groups_with_signal, merge_results
from hgpo_cli.train.rollout import Episode, RolloutResult


def scripted(groups: dict[str, list[float]], failed: dict[str, list[bool]] | None = None) -> RolloutResult:
    """One rollout: each group's trajectories with the given episode rewards, two steps each."""
    result = RolloutResult()
    for gid, rewards in groups.items():
        for j, reward in enumerate(rewards):
            bad = bool(failed and failed.get(gid, [False] * len(rewards))[j])
            result.episodes.append(
                Episode(
                    gid, f"{gid}/{j}", "task", "pick", won=reward > 0, length=2, total_reward=reward, worker_failed=bad
                )
            )
            for step in range(2):
                result.records.append(
                    StepRecord(
                        gid,
                        f"{gid}/{j}",
                        step,
                        "p",
                        "r",
                        "a",
                        reward if step else 0.0,
                        bool(step),
                        True,
                        "o",
                        extra={"prompt_ids": [1, 2, 3], "response_ids": [4, 5]},
                    )
                )
    return result


def test_groups_with_identical_rewards_are_dropped() -> None:
    ids = ["a", "a", "b", "b", "c", "c", "c"]
    rewards = [10.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
    assert groups_with_signal(ids, rewards) == ["a"]
    # a failed trajectory does not count: b's remaining one is alone, a's two still differ
    assert groups_with_signal(["a", "a", "a", "b", "b"], [10, 0, 0, 10, 0], [False, False, True, True, False]) == ["a"]


def test_tries_fill_the_batch_then_stop() -> None:
    filt = GroupFilter(target_groups=2, group_size=2, max_tries=5)
    kept = filt.add(scripted({"t1-a": [10, 0], "t1-b": [0, 0]}))
    assert [e.group_id for e in kept.episodes] == ["t1-a", "t1-a"]
    assert kept.prompt_tokens == 12 and kept.response_tokens == 8  # 4 steps of the kept group
    assert not filt.done  # 2 of 4 trajectories
    filt.add(scripted({"t2-a": [0, 0], "t2-b": [10, 10]}))
    assert not filt.done
    filt.add(scripted({"t3-a": [0, 10], "t3-b": [10, 0]}))
    assert filt.done  # 6 >= 4 trajectories: not cut back to the target, as verl-agent
    batch = filt.batch()
    assert [e.group_id for e in batch.episodes] == ["t1-a", "t1-a", "t3-a", "t3-a", "t3-b", "t3-b"]
    assert len(batch.records) == 12
    m = filt.log.metrics()
    assert m["rollout/filter_tries"] == 3
    assert m["rollout/groups_rolled"] == 6 and m["rollout/groups_kept"] == 3
    assert m["rollout/groups_kept_fraction"] == 0.5 and m["rollout/groups_with_signal_fraction"] == 0.5
    assert m["rollout/success_rate_all_tries"] == 5 / 12  # wins: 1 + 2 + 2


def test_the_last_try_is_kept_whole() -> None:
    filt = GroupFilter(target_groups=2, group_size=2, max_tries=2)
    filt.add(scripted({"a": [0, 0], "b": [0, 0]}))
    assert not filt.done and filt.kept_trajectories == 0
    filt.add(scripted({"c": [0, 0], "d": [10, 10]}))  # no signal either, but the last try passes
    assert filt.done
    assert [e.group_id for e in filt.batch().episodes] == ["c", "c", "d", "d"]
    m = filt.log.metrics()
    assert m["rollout/groups_kept"] == 2 and m["rollout/groups_with_signal_fraction"] == 0.0


def test_one_try_allowed_means_no_filtering() -> None:
    filt = GroupFilter(target_groups=1, group_size=2, max_tries=1)
    filt.add(scripted({"a": [0, 0]}))
    assert filt.done and len(filt.batch().episodes) == 2


def test_merge_keeps_order_and_counts() -> None:
    a, b = scripted({"x": [1, 0]}), scripted({"y": [0, 0]})
    merged = merge_results([a, b])
    assert [e.group_id for e in merged.episodes] == ["x", "x", "y", "y"]
    assert len(merged.records) == 8


def test_groups_are_judged_on_the_training_reward() -> None:
    """WebShop's binary reward: purchases scoring 0.5 and 0.8 both train as 0, so their group is dropped;
    a group with one r = 1 purchase keeps its signal (10 vs 0)."""
    binary = lambda r: 10.0 if r >= 1.0 else 0.0  # noqa: E731 - the suite's training_reward
    result = scripted({"partial": [0.5, 0.8], "won": [1.0, 0.3]})
    raw = GroupFilter(target_groups=2, group_size=2, max_tries=2)
    assert [e.group_id for e in raw.add(result).episodes] == ["partial", "partial", "won", "won"]
    trained = GroupFilter(target_groups=2, group_size=2, max_tries=2, reward_map=binary)
    assert [e.group_id for e in trained.add(result).episodes] == ["won", "won"]
