"""A trajectory cut short by a failed environment worker is left out of training and of its group's
statistics, and still counted in the episode metrics."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from hgpo_cli.agent.records import StepRecord
from hgpo_cli.config.schema import AlgorithmConfig
from hgpo_cli.train.failures import failed_trajectories, without_failed_trajectories
from hgpo_cli.train.metrics import episode_metrics
from hgpo_cli.train.rollout import Episode, RolloutResult
from hgpo_cli.train.step_advantages import advantages_for
from hgpo_cli.train.trainer import train_samples


def _record(traj: int, step: int, reward: float, failed: bool = False) -> StepRecord:
    return StepRecord(
        group_id="g",
        traj_id=f"g/{traj}",
        step_index=step,
        prompt=f"p{traj}.{step}",
        response="r",
        action="look",
        reward=reward,
        done=False,
        valid=True,
        anchor=f"obs{step}",
        extra={"prompt_ids": [traj, step], "response_ids": [7, 8], "worker_failed": failed},
    )


def _group_of_four() -> RolloutResult:
    """Four trajectories of one task: 0 and 2 win (10 at their second step), 1 loses, 3 is cut short by a
    failed worker at its second step (reward 0)."""
    records = [
        _record(0, 0, 0.0),
        _record(0, 1, 10.0),
        _record(1, 0, 0.0),
        _record(1, 1, 0.0),
        _record(2, 0, 0.0),
        _record(2, 1, 10.0),
        _record(3, 0, 0.0),
        _record(3, 1, 0.0, failed=True),
    ]
    episodes = [
        Episode("g", f"g/{i}", "t", "pick", won=i in (0, 2), length=2, total_reward=10.0 * (i in (0, 2)))
        for i in range(4)
    ]
    episodes[3].worker_failed = True
    return RolloutResult(records=records, episodes=episodes)


def _algorithm(**over) -> dict:
    base = OmegaConf.to_container(OmegaConf.structured(AlgorithmConfig), resolve=True)
    return {**base, "invalid_action_penalty": 0.0, **over}


def test_failed_trajectory_is_found_by_its_step_or_its_episode() -> None:
    result = _group_of_four()
    assert failed_trajectories(result.records) == {"g/3"}
    assert failed_trajectories([], result.episodes) == {"g/3"}


@pytest.mark.parametrize("episode_stats", ["trajectories", "steps"])
def test_other_three_get_the_advantages_of_a_group_of_three(episode_stats: str) -> None:
    # GRPO over the 3 kept trajectories, scores 10, 0, 10: mean 20/3; unbiased std
    # sqrt(((10/3)^2 + (20/3)^2 + (10/3)^2) / 2) = sqrt(100/3); A = (1, -2, 1) / sqrt(3) (eps 1e-6 aside).
    # (With the failed one kept at 0: mean 5, std sqrt(100/3), A = +-sqrt(3)/2 = +-0.866.)
    # "steps" (verl-agent's) takes the statistics over the 6 step samples, each carrying its episode's score
    # (10, 10, 0, 0, 10, 10): mean 20/3, unbiased std sqrt((4 (10/3)^2 + 2 (20/3)^2) / 5) = sqrt(80/3).
    result, dropped = without_failed_trajectories(_group_of_four())
    assert dropped == 2
    adv = advantages_for(result.records, _algorithm(name="grpo", episode_stats=episode_stats))
    std = math.sqrt(100 / 3) if episode_stats == "trajectories" else math.sqrt(80 / 3)
    win, lose = (10 - 20 / 3) / (std + 1e-6), (0 - 20 / 3) / (std + 1e-6)
    assert adv.advantages.tolist() == pytest.approx([win, win, lose, lose, win, win], rel=1e-9)
    # the step groups (same observation across the group) hold 3 steps, not 4
    assert adv.levels[0]["size_hist"] == {3: 2} and adv.levels[0]["steps"] == 6

    # the failed trajectory's samples are not trained on; its episode is still counted and logged
    samples = train_samples(result, adv.advantages)
    assert len(samples) == 6
    assert all(s.prompt_ids[0] != 3 for s in samples)
    metrics = episode_metrics(result)
    assert metrics["rollout/worker_failed_episodes"] == 1.0
    assert metrics["rollout/success_rate"] == 0.5


def test_a_batch_without_failures_is_unchanged() -> None:
    result = _group_of_four()
    result.records = [r for r in result.records if r.traj_id != "g/3"]
    result.episodes = result.episodes[:3]
    same, dropped = without_failed_trajectories(result)
    assert same is result and dropped == 0
