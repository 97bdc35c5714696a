"""The Ray environment pool on real Ray and real (generated) ALFWorld games: identical group resets,
parallel steps, and an actor killed mid-rollout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("alfworld")
ray = pytest.importorskip("ray")

from tests.test_alfworld_generated import generated_games  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            logging_level="ERROR",
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        )
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def tasks_and_plans(tmp_path_factory: pytest.TempPathFactory):
    from hgpo_cli.config import load_config
    from hgpo_cli.envs.alfworld import suite

    root = generated_games(tmp_path_factory)
    cfg = load_config("smollm2", [f"env.alfworld.data_dir={root}", "env.max_steps=50"])
    tasks = suite.list_tasks(cfg, "train")
    plans = {
        t.task_id: json.loads((Path(t.payload["path"]) / "game.tw-pddl").read_text())["walkthrough"] for t in tasks
    }
    return cfg, tasks, plans


@pytest.fixture(scope="module")
def pool(ray_cluster, tasks_and_plans):
    from hgpo_cli.envs.pool import EnvPool

    cfg, _, _ = tasks_and_plans
    pool = EnvPool(cfg, num_workers=2, cpus_per_worker=0.5)
    yield pool
    pool.close()


def _groups(tasks, n: int = 3):
    a, b = tasks[0], tasks[5]  # look_at and pick_two: a bedroom and a living room (cheaper than kitchens)
    return [a] * n + [b] * n


def test_group_resets_are_identical_and_walkthroughs_win(pool, tasks_and_plans) -> None:
    _, tasks, plans = tasks_and_plans
    env_tasks = _groups(tasks)
    start = pool.reset(env_tasks)
    assert len(start) == 6
    for group in (start[:3], start[3:]):
        assert all(r.observation == group[0].observation for r in group)
        assert all(r.admissible_actions == group[0].admissible_actions for r in group)
        assert all(not r.done and r.reward == 0 for r in group)
    assert start[0].observation != start[3].observation
    for w in pool.workers:
        info = ray.get(w.ping.remote())
        assert info["envs"] == 3 and not info["torch_imported"]
    # Walk every environment through its plan; environments of a group stay in lock-step.
    current = dict(enumerate(start))
    step = 0
    while any(not r.done for r in current.values()):
        actions = {i: plans[env_tasks[i].task_id][step] for i, r in current.items() if not r.done}
        out = pool.step(actions)
        assert set(out) == set(actions)
        current.update(out)
        step += 1
        assert step <= 30
    assert all(r.won and r.reward == 10.0 for r in current.values())
    assert len({current[i].observation for i in range(3)}) == 1
    assert pool.failed_episodes == 0


def test_any_action_text_is_accepted(pool, tasks_and_plans) -> None:
    _, tasks, _ = tasks_and_plans
    pool.reset(_groups(tasks))  # same tasks as before: the environments are reused, only reset
    out = pool.step({0: "dance with the fridge", 3: ""})
    assert set(out) == {0, 3}
    assert out[0].observation == "Nothing happens." and not out[0].done
    assert out[3].reward == 0 and not out[3].won and not out[3].done


def wait_until_killed(worker, timeout_s: float = 60.0) -> None:
    """`ray.kill` returns before the actor dies: a call sent at once can still reach the old process (it did
    once, in a full `make test`). Wait until the actor answers no more (no restart) or answers restarted, holding no
    environment."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ray.get(worker.ping.remote(), timeout=timeout_s)["envs"] == 0:
                return
        except Exception:
            return
        time.sleep(0.05)
    raise AssertionError("the killed env worker still answers with its environments")


@pytest.mark.parametrize("no_restart", [False, True])
def test_worker_killed_mid_episode(pool, tasks_and_plans, no_restart: bool) -> None:
    _, tasks, plans = tasks_and_plans
    env_tasks = _groups(tasks)
    failed_before = pool.failed_episodes
    start = pool.reset(env_tasks)
    first = {i: plans[env_tasks[i].task_id][0] for i in range(6)}
    pool.step(first)
    # Envs 0-2 live on worker 0, 3-5 on worker 1.
    assert pool.assignment(6) == [0, 0, 0, 1, 1, 1]
    ray.kill(pool.workers[0], no_restart=no_restart)
    wait_until_killed(pool.workers[0])
    second = {i: plans[env_tasks[i].task_id][1] for i in range(6)}
    out = pool.step(second)
    for i in range(3):
        assert out[i].done and not out[i].won and out[i].reward == 0
        assert out[i].info["worker_failed"] is True
    for i in range(3, 6):
        assert not out[i].info.get("worker_failed") and not out[i].done
    assert pool.failed_episodes == failed_before + 3
    # The rollout goes on for the others; a lost index keeps answering "failed" without a worker call.
    again = pool.step({0: "look", 3: plans[env_tasks[3].task_id][2]})
    assert again[0].info["worker_failed"] and not again[3].info.get("worker_failed")
    assert pool.failed_episodes == failed_before + 3
    # The next reset works on every environment again.
    fresh = pool.reset(env_tasks)
    assert [r.observation for r in fresh] == [r.observation for r in start]
    assert not any(r.info.get("worker_failed") for r in fresh)
    out = pool.step({i: plans[env_tasks[i].task_id][0] for i in range(6)})
    assert not any(r.info.get("worker_failed") for r in out.values())
