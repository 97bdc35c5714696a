"""The real ALFWorld games of the shared data (valid_seen = eval_in_distribution, valid_train = train).

Needs HGPO_ALFWORLD_DATA = the folder that holds json_2.1.1/ (`.ci/run` sets it to ../shared/data/alfworld).
The games played here are two of each task type whose planner solution is quick to find (a few real
games take the planner minutes; `hgpo envs check alfworld --walkthrough` plays them all).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

DATA = os.environ.get("HGPO_ALFWORLD_DATA", "")
pytestmark = [
    pytest.mark.real_alfworld,
    pytest.mark.skipif(
        not DATA,
        reason="HGPO_ALFWORLD_DATA is unset: set it to the folder holding json_2.1.1/ "
        "(e.g. ../shared/data/alfworld, as .ci/run does) to run the real-game tests",
    ),
]
pytest.importorskip("alfworld")

# Two per task type (valid_seen), chosen for planner solutions found in well under a second.
GAMES = [
    "look_at_obj_in_light-CD-None-DeskLamp-320/trial_T20190907_224451_655673",
    "look_at_obj_in_light-CD-None-DeskLamp-302/trial_T20190907_154618_526741",
    "pick_and_place_simple-SoapBottle-None-CounterTop-417/trial_T20190910_112922_368384",
    "pick_and_place_simple-Pencil-None-Desk-310/trial_T20190909_113054_894334",
    "pick_clean_then_place_in_recep-SoapBar-None-Cabinet-402/trial_T20190908_055221_984342",
    "pick_clean_then_place_in_recep-SoapBar-None-Toilet-410/trial_T20190906_201106_979461",
    "pick_cool_then_place_in_recep-Pot-None-DiningTable-21/trial_T20190909_004531_429065",
    "pick_cool_then_place_in_recep-Cup-None-SideTable-21/trial_T20190906_192823_237997",
    "pick_heat_then_place_in_recep-Mug-None-SideTable-21/trial_T20190909_090729_088825",
    "pick_heat_then_place_in_recep-Plate-None-DiningTable-28/trial_T20190908_001247_096796",
    "pick_two_obj_and_place-AlarmClock-None-Dresser-305/trial_T20190907_165826_194855",
    "pick_two_obj_and_place-CD-None-Drawer-304/trial_T20190907_230232_832893",
]


def _cfg(**overrides: object):
    from hgpo_cli.config import load_config

    return load_config(
        "smollm2", [f"env.alfworld.data_dir={DATA}", "env.max_steps=50"] + [f"{k}={v}" for k, v in overrides.items()]
    )


@pytest.fixture(scope="module")
def valid_seen():
    from hgpo_cli.envs.alfworld import suite

    tasks = suite.list_tasks(_cfg(), "eval_in_distribution")
    return {t.task_id.split("/", 1)[1]: t for t in tasks}


def test_splits_and_task_types(valid_seen) -> None:
    from hgpo_cli.envs.alfworld import suite

    assert len(valid_seen) == 140
    counts = Counter(t.task_type for t in valid_seen.values())
    assert counts == {
        "pick_and_place": 35,
        "pick_clean_then_place": 27,
        "pick_cool_then_place": 25,
        "pick_two_obj_and_place": 24,
        "pick_heat_then_place": 16,
        "look_at_obj_in_light": 13,
    }
    train = suite.list_tasks(_cfg(), "train")  # the shared folder calls it valid_train
    assert len(train) == 200 and all(t.task_id.startswith("valid_train/") for t in train)
    assert suite.list_tasks(_cfg(), "valid_seen") == list(valid_seen.values())
    from hgpo_cli.errors import UserError

    with pytest.raises(UserError, match="valid_unseen"):
        suite.list_tasks(_cfg(), "eval_out_of_distribution")


@pytest.mark.parametrize("game", GAMES, ids=[g.split("-")[0] + "-" + g.split("-")[1] for g in GAMES])
def test_walkthrough_wins_with_reward_10(valid_seen, game: str) -> None:
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv

    task = valid_seen[game]
    env = AlfWorldEnv(task, max_steps=50)
    start = env.reset()
    assert not start.done and not start.won and start.reward == 0.0
    assert start.observation.startswith("You are in the middle of a room.")
    assert "Your task is to:" in start.observation and start.instruction
    assert "help" not in start.admissible_actions and "look" in start.admissible_actions
    plan = env.walkthrough()
    assert 0 < len(plan) <= 50
    result, rewards = start, []
    for command in plan:
        assert command in result.admissible_actions
        result = env.step(command)
        rewards.append(result.reward)
    assert result.won and result.done
    assert rewards == [0.0] * (len(plan) - 1) + [10.0]
    after = env.step("look")  # after the end: no more reward, still done
    assert after.done and after.reward == 0.0
    env.close()


def _transcript(env, actions: list[str]) -> list[tuple]:
    first = env.reset()
    rows = [(first.observation, tuple(first.admissible_actions), first.won)]
    for action in actions:
        r = env.step(action)
        rows.append((r.observation, tuple(r.admissible_actions), r.won, r.reward, r.done))
    return rows


def _actions(env, seed: int, n: int) -> list[str]:
    """A fixed action list: random admissible choices along one playthrough, then the plan."""
    rng = random.Random(seed)
    r = env.reset()
    out = []
    for _ in range(n):
        action = rng.choice(r.admissible_actions)
        out.append(action)
        r = env.step(action)
    out.append("not a command")
    return out + env.walkthrough()


def test_group_of_envs_starts_identical_and_stays_in_step(valid_seen) -> None:
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv

    task = valid_seen[GAMES[5]]
    probe = AlfWorldEnv(task)
    actions = _actions(probe, seed=1, n=8)
    probe.close()  # its engine is recycled by the next environment
    group = [AlfWorldEnv(task) for _ in range(3)]
    transcripts = [_transcript(env, actions) for env in group]
    assert transcripts[0] == transcripts[1] == transcripts[2]
    assert transcripts[0][-1][2] is True  # the plan still wins after the random prefix
    again = _transcript(group[0], actions)  # a second episode on the same environment
    assert again == transcripts[0]


def test_parse_cache_gives_identical_transcripts(valid_seen) -> None:
    from hgpo_cli.envs.alfworld import engine_cache
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv

    task = valid_seen[GAMES[4]]
    cached = AlfWorldEnv(task, parse_cache=True)
    actions = _actions(cached, seed=2, n=6)
    with_cache = _transcript(cached, actions)
    cached.close()
    engine_cache.uninstall()
    try:
        plain = AlfWorldEnv(task, parse_cache=False)
        without = _transcript(plain, actions)
        plain.close()
    finally:
        engine_cache.install()
    assert with_cache == without


def test_game_file_is_used_when_it_loads(valid_seen, tmp_path: Path) -> None:
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv
    from hgpo_cli.envs.alfworld.games import build_game, scan_split

    source = Path(valid_seen[GAMES[2]].payload["path"])
    trial = tmp_path / "json_2.1.1" / "valid_seen" / source.parent.name / source.name
    trial.mkdir(parents=True)
    for name in ("initial_state.pddl", "traj_data.json"):
        shutil.copy(source / name, trial / name)
    game = build_game(trial)
    marked = dict(game, grammar=game["grammar"].replace("-= Welcome to TextWorld, ALFRED! =-", "BANNER"))
    (trial / "game.tw-pddl").write_text(json.dumps(marked))
    (task,) = scan_split(tmp_path / "json_2.1.1" / "valid_seen", "eval_in_distribution")
    env = AlfWorldEnv(task)
    assert env.reset().observation.startswith("BANNER")  # read from the game file
    env.close()
    (trial / "game.tw-pddl").write_text("{not json")
    env = AlfWorldEnv(task)
    assert env.reset().observation.startswith("You are in the middle of a room.")  # rebuilt from the problem
    env.close()
    (trial / "game.tw-pddl").write_text(json.dumps(dict(game, solvable=False)))
    assert scan_split(tmp_path / "json_2.1.1" / "valid_seen", "eval_in_distribution") == []
