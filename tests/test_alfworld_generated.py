"""Generated ALFWorld games: one of each task type, verified, in the release layout, won by walkthrough."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

from hgpo_cli.envs.alfworld.games import TASK_TYPES  # noqa: E402

SEED = 0


def generated_games(tmp_path_factory: pytest.TempPathFactory, n: int = 6, split: str = "train") -> Path:
    """`n` generated games (one per task type for n = 6), shared by every test module of the session.

    Generation is deterministic and resumable, so a second caller reuses the games already written."""
    from hgpo_cli.envs.alfworld.generate import generate_split

    root = tmp_path_factory.getbasetemp() / "alfworld-generated"
    generate_split(root, split, n, SEED)
    return root


@pytest.fixture(scope="module")
def games_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_games(tmp_path_factory)


def _cfg(**overrides: object):
    from hgpo_cli.config import load_config

    return load_config("smollm2", [f"{k}={v}" for k, v in overrides.items()])


def test_layout_matches_the_release(games_root: Path) -> None:
    trials = sorted((games_root / "json_2.1.1" / "train").glob("*/*/traj_data.json"))
    assert len(trials) == 6
    types, rooms = set(), set()
    for traj_path in trials:
        trial = traj_path.parent
        assert (trial / "initial_state.pddl").is_file() and (trial / "game.tw-pddl").is_file()
        traj = json.loads(traj_path.read_text())
        assert set(traj) >= {"task_id", "task_type", "pddl_params", "scene"}
        assert trial.parent.name.startswith(traj["task_type"] + "-")
        game = json.loads((trial / "game.tw-pddl").read_text())
        assert game["solvable"] is True and game["walkthrough"]
        assert "UNKNOWN GOAL" not in game["grammar"]
        types.add(traj["task_type"])
        rooms.add(traj["hgpo_generated"]["room"])
    assert len(types) == 6
    assert len(rooms) >= 3  # kitchens, living rooms / bedrooms, bathrooms


def test_every_task_type_wins_by_walkthrough(games_root: Path) -> None:
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv
    from hgpo_cli.envs.alfworld.games import scan_split

    tasks = scan_split(games_root / "json_2.1.1" / "train", "train")
    assert sorted(t.task_type for t in tasks) == sorted(TASK_TYPES)
    for task in tasks:
        env = AlfWorldEnv(task, max_steps=50)
        start = env.reset()
        assert not start.done and not start.won and start.reward == 0
        assert start.instruction and "help" not in start.admissible_actions
        plan = env.walkthrough()
        result = start
        for k, command in enumerate(plan):
            assert command in result.admissible_actions
            result = env.step(command)
            assert result.done == (k == len(plan) - 1), task.task_id
        assert result.won and result.reward == 10.0, task.task_id
        env.close()


def test_shallow_context_copies_play_the_engines_own_transcripts(games_root: Path) -> None:
    """engine_cache's copy_context (new dicts of the same values instead of textworld's deep copies)
    gives the engine's own observations and command lists, step by step, in every task type: random
    listed commands, an unlisted one, then the planner's solution from where that left the game."""
    import random

    import textworld.envs.pddl.textgen as textgen

    from hgpo_cli.envs.alfworld import engine_cache
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv
    from hgpo_cli.envs.alfworld.games import scan_split

    engine_cache.install()
    ours = textgen.copy_context
    theirs = engine_cache._state["originals"][(textgen, "copy_context")]
    assert ours is not theirs

    def transcript(task: object, seed: int) -> list[tuple[str, list[str], bool]]:
        env = AlfWorldEnv(task, max_steps=50)
        rng = random.Random(seed)
        result = env.reset()
        out = [(result.observation, result.admissible_actions, result.won)]
        for k in range(6):
            result = env.step("jump around" if k == 1 else rng.choice(result.admissible_actions))
            out.append((result.observation, result.admissible_actions, result.won))
            if result.done:
                break
        for command in env.walkthrough():
            if result.done:
                break
            result = env.step(command)
            out.append((result.observation, result.admissible_actions, result.won))
        env.close()
        return out

    tasks = scan_split(games_root / "json_2.1.1" / "train", "train")
    try:
        for seed, task in enumerate(tasks):
            textgen.copy_context = theirs
            expected = transcript(task, seed)
            textgen.copy_context = ours
            assert transcript(task, seed) == expected, task.task_id
    finally:
        textgen.copy_context = ours


def test_problem_alone_builds_the_same_game(games_root: Path, tmp_path: Path) -> None:
    """Without game.tw-pddl the game is built from initial_state.pddl + traj_data.json (the real-data path)."""
    import shutil

    from hgpo_cli.envs.alfworld.env import AlfWorldEnv
    from hgpo_cli.envs.alfworld.games import scan_split

    source = sorted((games_root / "json_2.1.1" / "train").glob("pick_heat*/*"))[0]
    copy = tmp_path / "json_2.1.1" / "train" / source.parent.name / source.name
    copy.mkdir(parents=True)
    for name in ("initial_state.pddl", "traj_data.json"):
        shutil.copy(source / name, copy / name)
    (task,) = scan_split(tmp_path / "json_2.1.1" / "train", "train")
    env = AlfWorldEnv(task)
    start = env.reset()
    (original,) = [t for t in scan_split(games_root / "json_2.1.1" / "train", "train") if t.task_id == task.task_id]
    reference = AlfWorldEnv(original).reset()
    assert start.observation == reference.observation
    assert start.admissible_actions == reference.admissible_actions
    result = start
    for command in env.walkthrough():  # replanned: no stored walkthrough here
        result = env.step(command)
    assert result.won and result.reward == 10.0


def test_generation_is_deterministic() -> None:
    import random

    from hgpo_cli.envs.alfworld.generate import choose_goal, furnish, problem_pddl

    texts = []
    for _ in range(2):
        rng = random.Random("same seed")
        room = furnish(12, rng, required=["Microwave"])
        goal = choose_goal("pick_heat_then_place", room, rng)
        assert goal is not None
        texts.append(problem_pddl("trial_x", room, goal))
    assert texts[0] == texts[1]
    assert "(:goal" in texts[0] and "isHot" in texts[0]


def test_list_tasks_and_check_on_generated_data(games_root: Path) -> None:
    from hgpo_cli.envs.alfworld import suite

    cfg = _cfg(**{"env.alfworld.data_dir": games_root, "env.num_workers": 1})
    tasks = suite.list_tasks(cfg, "train")
    assert len(tasks) == 6 and all(t.env == "alfworld" for t in tasks)
    only = _cfg(**{"env.alfworld.data_dir": games_root, "env.alfworld.task_types": "[pick_two_obj_and_place]"})
    assert [t.task_type for t in suite.list_tasks(only, "train")] == ["pick_two_obj_and_place"]
    summary = suite.check(cfg, "train", walkthrough=True, limit=3)
    assert summary["games"] == summary["loaded"] == summary["won"] == 3
    assert sum(row["games"] for row in summary["by_task_type"].values()) == 3


def test_check_gives_up_on_a_game_after_the_time_limit(games_root: Path) -> None:
    from hgpo_cli.envs.alfworld import suite

    cfg = _cfg(**{"env.alfworld.data_dir": games_root, "env.num_workers": 1, "env.alfworld.check_timeout_s": 0.05})
    summary = suite.check(cfg, "train", walkthrough=True, limit=2)
    assert summary["games"] == 2 and summary["won"] == 0
    assert [f["error"] for f in summary["failed"]] == ["timeout after 0.05 s"] * 2


def test_missing_paths_are_one_line_user_errors(tmp_path: Path) -> None:
    from hgpo_cli.envs.alfworld import suite
    from hgpo_cli.errors import UserError

    with pytest.raises(UserError, match="data folder not found"):
        suite.list_tasks(_cfg(**{"env.alfworld.data_dir": tmp_path / "nope"}), "train")
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="valid_unseen"):
        suite.list_tasks(_cfg(**{"env.alfworld.data_dir": tmp_path}), "eval_out_of_distribution")
    with pytest.raises(UserError, match="unknown ALFWorld split"):
        suite.list_tasks(_cfg(**{"env.alfworld.data_dir": tmp_path}), "test")


def test_embedded_games_are_generated_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hgpo_cli.envs.alfworld import suite

    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(**{"env.alfworld.generated_games": 2, "env.alfworld.generated_seed": 3})
    tasks = suite.list_tasks(cfg, "train")
    root = tmp_path / "cache" / "alfworld" / "generated-3-2" / "json_2.1.1" / "train"
    assert len(tasks) == 2 and root.is_dir()
    assert all(Path(t.payload["path"]).is_relative_to(root) for t in tasks)
    stamp = (root / ".complete").stat().st_mtime_ns
    assert suite.list_tasks(cfg, "train") == tasks
    assert (root / ".complete").stat().st_mtime_ns == stamp  # not generated again


def test_cli_generate_then_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hgpo_cli.cli import app

    runner = CliRunner()
    out = tmp_path / "games"
    result = runner.invoke(
        app,
        ["data", "alfworld-generate", "--out", str(out), "--n", "1", "--seed", "5",
         "--task-types", "pick_and_place", "--splits", "valid_unseen"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((out / "json_2.1.1" / "valid_unseen").glob("*/*/initial_state.pddl"))) == 1
    result = runner.invoke(
        app,
        ["envs", "check", "alfworld", "--data-dir", str(out), "--split", "eval_out_of_distribution",
         "--walkthrough", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["games"] == summary["loaded"] == summary["won"] == 1
    assert summary["by_task_type"] == {"pick_and_place": {"games": 1, "loaded": 1, "won": 1}}
    bad = runner.invoke(app, ["data", "alfworld-generate", "--out", str(out), "--task-types", "juggling"])
    assert bad.exit_code != 0


def test_cli_list_and_play(games_root: Path) -> None:
    from typer.testing import CliRunner

    from hgpo_cli.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["envs", "list"])
    assert listed.exit_code == 0 and "alfworld" in listed.output and "webshop" in listed.output
    played = runner.invoke(
        app,
        ["envs", "play", "alfworld", "--data-dir", str(games_root), "--split", "train", "--index", "0"],
        input="1\nnot a command\nquit\n",
    )
    assert played.exit_code == 0, played.output
    assert "Task: " in played.output and "Nothing happens." in played.output
    assert "stopped after 2 step(s)" in played.output


def test_generated_games_of_chosen_types_and_eval_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hgpo_cli.envs.alfworld import suite

    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    overrides = {
        "env.alfworld.generated_games": 3,
        "env.alfworld.generated_eval_games": 1,
        "env.alfworld.generated_seed": 5,
        "env.alfworld.task_types": "[look_at_obj_in_light,pick_and_place]",
    }
    cfg = _cfg(**overrides)
    root = suite.generated_root(cfg)
    # the generator's own order of the types, and the eval count, name the folder
    assert root.name == "generated-5-3-e1-pick_and_place-look_at_obj_in_light"
    train = suite.list_tasks(cfg, "train")
    # the types take turns in the generator's order (pick, look, pick); listed sorted by folder
    assert sorted(t.task_type for t in train) == ["look_at_obj_in_light", "pick_and_place", "pick_and_place"]
    assert len(suite.list_tasks(cfg, "eval_in_distribution")) == 1
    assert all(Path(t.payload["path"]).is_relative_to(root) for t in train)
    # all six types and no separate eval count: the folder of earlier versions
    assert suite.generated_root(_cfg(**{"env.alfworld.generated_games": 3})).name == "generated-0-3"


def test_room_limits_cap_the_furnished_room_and_name_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from hgpo_cli.envs.alfworld import suite
    from hgpo_cli.envs.alfworld.generate import furnish, generate_one

    full = furnish(12, random.Random(3), required=["Microwave"])
    small = furnish(12, random.Random(3), required=["Microwave"], max_receptacles=5, max_objects=4)
    assert len(full.receptacles) > 5 and len(small.receptacles) == 5
    assert "Microwave" in small.rtypes() and len(small.objects) <= 4
    _, _, game = generate_one("train", 0, 9, "pick_and_place", (5, 4))
    assert game["walkthrough"] and game["pddl_problem"].split("(:init")[0].count(" - receptacle") <= 5
    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(**{"env.alfworld.generated_max_receptacles": 5, "env.alfworld.generated_max_objects": 4})
    assert suite.generated_root(cfg).name == "generated-0-60-r5o4"
