"""The on-disk cache of fast-downward's PDDL-to-SAS translation: same result, no second translation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")


def test_second_call_reads_the_file_and_a_broken_file_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hgpo_cli.envs.alfworld import sas_cache

    monkeypatch.setenv("HGPO_CACHE", str(tmp_path))
    calls: list[int] = []

    def translate() -> tuple[str, list[int]]:
        calls.append(1)
        return ("begin_version\n3\nend_version", [1, 2, 3])

    first = sas_cache.cached("(domain)", "(problem)", False, translate)
    second = sas_cache.cached("(domain)", "(problem)", False, translate)
    assert first == second and len(calls) == 1
    sas_cache.cached("(domain)", "(problem)", True, translate)  # the other variant is its own entry
    assert len(calls) == 2
    path = sas_cache.cache_path("(domain)", "(problem)", False)
    path.write_bytes(b"not a pickle")
    assert sas_cache.cached("(domain)", "(problem)", False, translate) == first
    assert len(calls) == 3 and path.read_bytes() != b"not a pickle"
    monkeypatch.setenv("HGPO_SAS_CACHE", "0")
    sas_cache.cached("(domain)", "(problem)", False, translate)
    assert len(calls) == 4  # off: always translated


def _transcript(trial: Path) -> list[tuple[str, list[str], bool]]:
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv
    from hgpo_cli.envs.base import TaskSpec

    env = AlfWorldEnv(TaskSpec(env="alfworld", task_id="t", task_type="t", payload={"path": str(trial)}))
    result = env.reset()
    out = [(result.observation, result.admissible_actions, result.won)]
    for command in env.walkthrough():
        result = env.step(command)
        out.append((result.observation, result.admissible_actions, result.won))
    env.close()
    return out


def test_a_game_played_from_the_stored_translation_is_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh process state (LRU cleared) loading from disk plays the same transcript as translating."""
    import fast_downward

    from hgpo_cli.envs.alfworld import engine_cache
    from hgpo_cli.envs.alfworld.generate import generate_one, write_game

    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    rel, traj, game = generate_one("train", 1, 11, "pick_and_place")
    trial = write_game(tmp_path / "games", rel, traj, game)
    sas_dir = tmp_path / "cache" / "alfworld" / "sas"
    assert len(list(sas_dir.rglob("*.pkl.z"))) == 2  # generation's check of the plan stored it
    shutil.rmtree(sas_dir)

    def fresh_cache() -> None:  # as in a new process: nothing in memory
        engine_cache.uninstall()
        engine_cache._state["originals"] = None
        engine_cache.install()

    engine_cache.uninstall()
    try:
        translated = _transcript(trial)  # the engine's own parsing, nothing cached
    finally:
        fresh_cache()
    calls: list[int] = []
    original = fast_downward.pddl2sas

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fast_downward, "pddl2sas", counting)
    cached = _transcript(trial)  # translated once per variant, stored
    assert len(calls) == 2 and len(list(sas_dir.rglob("*.pkl.z"))) == 2
    fresh_cache()
    from_disk = _transcript(trial)
    assert len(calls) == 2  # no translation this time
    assert from_disk == cached == translated
    assert json.loads((trial / "game.tw-pddl").read_text())["walkthrough"]
    assert from_disk[-1][2] is True
