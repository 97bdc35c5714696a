"""`hgpo eval`: option parsing, checkpoint location and config choice, the tables, and the one-line errors.

The real evaluation (a tiny model playing generated games through Ray) runs at the end when the
environment pool and the ALFWorld suite are importable."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from hgpo_cli.config import load_config, to_yaml
from hgpo_cli.errors import UserError
from hgpo_cli.eval.progress import EvalUI, eval_table
from hgpo_cli.eval.runs import (
    default_out_dir,
    eval_config,
    eval_file_for,
    find_run_dirs,
    locate_checkpoint,
    newest_evals,
    parse_seeds,
    resolve_splits,
    short_model_name,
    split_label,
)
from hgpo_cli.eval.summary import across_seeds, markdown_table, seed_summary


def make_run(root: Path, overrides: list[str], iterations: tuple[int, ...] = (2,), preset: str | None = None) -> Path:
    """A run folder as the trainer leaves it: config.yaml, checkpoints/iter_*/{policy/config.json, state.json}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(to_yaml(load_config(preset, overrides)))
    for it in iterations:
        ckpt = root / "checkpoints" / f"iter_{it:06d}"
        (ckpt / "policy").mkdir(parents=True)
        (ckpt / "policy" / "config.json").write_text("{}")
        (ckpt / "state.json").write_text(json.dumps({"iteration": it}))
    return root


# ---------------------------------------------------------------------------------------------- options
def test_parse_seeds() -> None:
    assert parse_seeds("123,456,789") == (123, 456, 789)
    assert parse_seeds(" 1, 2 ") == (1, 2)
    assert parse_seeds(None) == (123, 456, 789)
    for bad in ("1,x", "1,1,2", "7", "1;2"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_resolve_splits_plain_names() -> None:
    assert resolve_splits("alfworld", None, "eval_in_distribution") == ["eval_in_distribution"]
    assert resolve_splits("alfworld", "in", "x") == ["eval_in_distribution"]
    assert resolve_splits("alfworld", "out-of-distribution", "x") == ["eval_out_of_distribution"]
    assert resolve_splits("alfworld", "all", "x") == ["eval_in_distribution", "eval_out_of_distribution"]
    assert resolve_splits("alfworld", "in,unseen,in", "x") == ["eval_in_distribution", "eval_out_of_distribution"]
    assert resolve_splits("webshop", "test", "x") == ["test"]
    with pytest.raises(UserError, match="not one of the webshop splits"):
        resolve_splits("webshop", "in", "test")
    assert split_label("eval_in_distribution") == "in-distribution"
    assert split_label("eval_out_of_distribution") == "out-of-distribution"


# ---------------------------------------------------------------------------------------------- locating
def test_locate_checkpoint_in_run(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", ["algorithm.name=gigpo"], iterations=(1, 2))
    newest = run / "checkpoints" / "iter_000002"
    for target in (newest / "policy", newest, run):
        ref = locate_checkpoint(str(target))
        assert Path(ref.model) == newest / "policy"
        assert ref.run_dir is not None and ref.run_dir.resolve() == run.resolve()
        assert default_out_dir(ref) == newest / "policy"
    # the run's config is used unless a preset is named; overrides and --env apply on top
    cfg, source = eval_config(locate_checkpoint(str(run)), None, ["env.max_steps=3"], None)
    assert cfg.algorithm.name == "gigpo" and cfg.env.max_steps == 3 and "config.yaml" in source
    cfg, source = eval_config(locate_checkpoint(str(run)), "default", [], "webshop")
    assert cfg.algorithm.name == "hgpo" and cfg.env.name == "webshop" and source == "preset default"


def test_locate_checkpoint_outside_hgpo(tmp_path: Path) -> None:
    folder = tmp_path / "someone-elses-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    ref = locate_checkpoint(str(folder))
    assert ref.run_dir is None and ref.out_dir == folder
    cfg, source = eval_config(ref, None, [], "alfworld")
    assert source == "preset default" and cfg.env.name == "alfworld"
    hub = locate_checkpoint("Qwen/Qwen2.5-1.5B-Instruct")
    assert hub.run_dir is None and default_out_dir(hub) == Path("runs/eval/Qwen--Qwen2.5-1.5B-Instruct")
    assert default_out_dir(locate_checkpoint("embedded:tiny-qwen2")) == Path("runs/eval/tiny-qwen2")
    with pytest.raises(UserError, match="not found"):
        locate_checkpoint(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="not an HF-format checkpoint"):
        locate_checkpoint(str(empty))
    with pytest.raises(UserError, match="--env"):
        eval_config(ref, None, [], "minecraft")


def test_short_model_name() -> None:
    assert short_model_name("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen2.5-1.5B-Instruct"
    assert short_model_name("embedded:smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert short_model_name("/data/runs/x/checkpoints/iter_000010/policy") == "x"


def test_evals_of_the_newest_checkpoint(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [], iterations=(1, 2))
    old = run / "checkpoints" / "iter_000001" / "policy" / "eval-alfworld-eval_in_distribution.json"
    old.write_text(json.dumps({"split": "eval_in_distribution", "per_seed": {"1": {"All": 1.0}}}))
    assert newest_evals(run)[1] == {}  # only the newest checkpoint counts
    new = run / "checkpoints" / "iter_000002" / "eval-alfworld-eval_in_distribution.json"
    new.write_text(json.dumps({"split": "eval_in_distribution", "per_seed": {"5": {"All": 50.0}}}))
    checkpoint, reports = newest_evals(run)
    assert checkpoint.name == "iter_000002" and reports["eval_in_distribution"]["per_seed"] == {5: {"All": 50.0}}
    assert eval_file_for(checkpoint, "alfworld", "eval_in_distribution") == new
    assert find_run_dirs([tmp_path]) == [run]


# ---------------------------------------------------------------------------------------------- tables
def episodes(wins: dict[str, list[bool]]) -> list[dict]:
    return [{"won": w, "task_type": t, "reward": 10.0 * w} for t, ws in wins.items() for w in ws]


def test_seed_aggregation_and_tables() -> None:
    seed_a = episodes({"pick_and_place": [True, True, False, True], "look_at_obj_in_light": [False, True]})
    seed_b = episodes({"pick_and_place": [True, False, False, True], "look_at_obj_in_light": [True, True]})
    per_seed = {123: seed_summary(seed_a), 456: seed_summary(seed_b)}
    assert per_seed[123]["Pick"] == 75.0 and per_seed[123]["Look"] == 50.0
    assert per_seed[123]["All"] == pytest.approx(100 * 4 / 6) and per_seed[456]["All"] == pytest.approx(100 * 4 / 6)
    stats = across_seeds(per_seed)
    assert stats["Pick"]["mean"] == pytest.approx(62.5)
    assert stats["Pick"]["std"] == pytest.approx(statistics.stdev([75.0, 50.0]))
    assert stats["Look"]["mean"] == pytest.approx(75.0) and stats["All"]["std"] == 0.0
    md = markdown_table("alfworld", "eval_in_distribution", stats, [123, 456])
    assert "| Pick | Look | All (success %) |" in md and "62.5 ± 17.7" in md
    report = {"checkpoint": "ckpt", "split": "eval_in_distribution", "per_seed": per_seed, "stats": stats}
    buffer = StringIO()
    Console(file=buffer, width=200).print(eval_table("alfworld", [report]))
    text = buffer.getvalue()
    assert "in-distribution" in text and "62.5 ± 17.7" in text and "75.0" in text and "mean ± std (2)" in text


def test_eval_ui_hooks() -> None:
    ui = EvalUI(4, console=Console(file=StringIO()))
    ui.message("hello")
    for seed in (1, 2):
        ui.start_seed(seed, "eval_in_distribution", 3, 5)
        ui.rollout_step(1, 3)
        ui.rollout_step(5, 0)
    ui.stop()
    assert ui.started == 2


@pytest.mark.parametrize("where", ["set_live", "show_cursor", "push_render_hook"])
def test_eval_ui_stops_after_ctrl_c_inside_start(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI once saw Ctrl-C land inside rich's Live.start (before its render hook was pushed): stopping the
    bars then raised IndexError from rich instead of `hgpo ablate` saying what was saved. Each point of
    Live.start where the interrupt can land must leave `stop` quiet and the cursor shown again."""
    console = Console(file=StringIO(), force_terminal=True)
    ui = EvalUI(2, console=console)
    real = getattr(console, where)
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> object:
        if calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(console, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        ui.start_seed(1, "eval_in_distribution", 3, 5)
    cursor = []
    monkeypatch.setattr(console, "show_cursor", lambda show=True: cursor.append(show) or True)
    ui.stop()
    ui.stop()  # a second call (ablate's except and finally) does nothing
    assert cursor and cursor[-1] is True
    assert console._live_stack == [] and console._render_hooks == []


# ---------------------------------------------------------------------------------------------- CLI errors
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "/no/such/folder"], "checkpoint not found"),
        (["eval", "embedded:tiny-qwen2", "--seeds", "1,x"], "--seeds"),
        (["eval", "embedded:tiny-qwen2", "--seeds", "123"], "at least 2 seeds"),
        (["eval", "embedded:tiny-qwen2", "--split", "sideways"], "--split"),
        (["eval", "embedded:tiny-qwen2", "--env", "minecraft"], "--env"),
        (["eval", "embedded:tiny-qwen2", "algorithm.nme=x"], "unknown config key"),
    ],
)
def test_eval_cli_errors_are_one_line(args: list[str], needle: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "hgpo_cli", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgpo: error:") and needle in lines[0], proc.stderr


# ---------------------------------------------------------------------------------------------- real run
def _env_ready() -> bool:
    names = (
        "hgpo_cli.envs.pool",
        "hgpo_cli.envs.alfworld.suite",
        "hgpo_cli.agent.prompts",
        "hgpo_cli.agent.projection",
    )
    try:
        return all(importlib.util.find_spec(n) is not None for n in names)
    except ModuleNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _env_ready(), reason="environment pool / ALFWorld suite / agent not available yet")
def test_eval_real_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real command: a 1.5M-parameter Qwen2 plays 2 generated games per seed, 2 seeds, 2 turns each."""
    from typer.testing import CliRunner

    from hgpo_cli.cli import app

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "eval"
    args = [
        "eval",
        "embedded:tiny-qwen2",
        "--seeds",
        "1,2",
        "--episodes",
        "2",
        "--out",
        str(out),
        "env.max_steps=2",
        "rollout.max_response_tokens=8",
        "rollout.max_prompt_tokens=512",
        "env.num_workers=1",
        "logging.mode=disabled",
        "ray.num_cpus=4",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads((out / "eval-alfworld-eval_in_distribution.json").read_text())
    assert report["seeds"] == [1, 2] and report["tasks"] == 2 and set(report["per_seed"]) == {"1", "2"}
    assert (out / "eval-alfworld-eval_in_distribution.md").is_file()
    assert "mean ± std" in result.output


def test_a_short_evaluation_takes_tasks_in_turn_from_each_type() -> None:
    from types import SimpleNamespace

    from hgpo_cli.eval.evaluate import spread_over_task_types

    tasks = [SimpleNamespace(task_id=f"{t}{i}", task_type=t) for t in ("look", "pick", "heat") for i in range(3)]
    tasks.pop(7)  # heat1: types need not be the same size
    chosen = [t.task_id for t in spread_over_task_types(tasks, 7)]
    assert chosen == ["look0", "pick0", "heat0", "look1", "pick1", "heat2", "look2"]
    assert [t.task_id for t in spread_over_task_types(tasks, 100)] == [
        "look0", "pick0", "heat0", "look1", "pick1", "heat2", "look2", "pick2"
    ]  # fmt: skip
    assert spread_over_task_types([], 3) == []
