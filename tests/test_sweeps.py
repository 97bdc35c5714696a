"""Every W&B sweep file, every run it defines: the command the agent builds resolves into a valid config.

The command is built as `wandb agent` builds it (wandb's own create_sweep_command_args for
${args_no_hyphens}, then the macro substitution of wandb_agent), so that no run fails on a typo at hour 10.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hgpo_cli.commands.common import split_preset_and_overrides
from hgpo_cli.config import load_config
from hgpo_cli.eval.ablate import load_grid_file
from hgpo_cli.eval.runs import resolve_splits

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))
MAIN = {"alfworld-main-1.5b", "alfworld-main-7b", "webshop-main-1.5b", "webshop-main-7b"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def runs_of(sweep: dict) -> list[dict]:
    """The parameter sets of a grid sweep, as the sweep controller enumerates them."""
    params = sweep["parameters"]
    keys = list(params)
    choices = [params[k]["values"] if "values" in params[k] else [params[k]["value"]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def agent_command(sweep: dict, args: dict) -> list[str]:
    """The argv `wandb agent` runs for one parameter set (wandb_agent.Agent._command_run)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in args.items()}})
    macros["env"] = ["/usr/bin/env"]
    command: list[str] = []
    for chunk in map(str, sweep["command"]):
        if chunk.startswith("${") and chunk.endswith("}"):
            command += macros.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


def test_the_sweeps_exist() -> None:
    names = {p.stem for p in SWEEPS}
    assert names >= MAIN
    assert {"ablation-k", "ablation-alpha", "ablation-base-group", "ablation-norm", "ablation-weighting"} <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_run_resolves(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = load(path)
    assert sweep["method"] == "grid" and sweep["name"] == path.stem
    assert "${args_no_hyphens}" in sweep["command"], "overrides must reach hgpo train as key=value"
    runs = runs_of(sweep)
    assert runs
    names = set()
    for i, args in enumerate(runs):
        argv = agent_command(sweep, args)
        assert argv[:3] == ["/usr/bin/env", "hgpo", "train"]
        monkeypatch.setenv("WANDB_RUN_ID", f"run{i:03d}")  # set by the agent for each run
        preset, overrides = split_preset_and_overrides(argv[3:])
        cfg = load_config(preset, overrides)
        for key, value in args.items():
            assert cfg_value(cfg, key) == value, (key, value)
        assert cfg.trainer.eval_after is True  # a finished run evaluates itself
        if path.stem.startswith("alfworld-main"):  # the paper's table has both ALFWorld columns
            splits = resolve_splits("alfworld", cfg.trainer.eval_splits, cfg.env.alfworld.eval_split)
            assert splits == ["eval_in_distribution", "eval_out_of_distribution"]
        assert cfg.logging.project == sweep["project"]  # the run logs into the sweep's project
        assert cfg.trainer.experiment_name == f"sweep-{path.stem}/run{i:03d}"
        names.add(cfg.trainer.experiment_name)
    assert len(names) == len(runs)  # no two runs share (and resume) a run folder


def cfg_value(cfg, key: str):
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key)


@pytest.mark.parametrize("name", sorted(MAIN))
def test_main_sweeps_cover_the_table(name: str) -> None:
    sweep = load(next(p for p in SWEEPS if p.stem == name))
    runs = runs_of(sweep)
    cells = {(r["algorithm.name"], r["algorithm.hgpo.history_length"]) for r in runs}
    assert cells == {(m, k) for m in ("grpo", "gigpo", "hgpo") for k in (2, 4)}
    assert sorted({r["trainer.seed"] for r in runs}) == [0, 1, 2] and len(runs) == 18
    size = "7b" if name.endswith("7b") else "1.5b"
    assert sweep["command"][3] == f"{name.split('-')[0]}-qwen2.5-{size}"


@pytest.mark.parametrize("grid", ["k", "alpha", "base_group", "norm", "weighting"])
def test_ablation_sweeps_match_the_shipped_grids(grid: str) -> None:
    sweep = load(next(p for p in SWEEPS if p.stem == f"ablation-{grid.replace('_', '-')}"))
    spec = load_grid_file(grid)
    params = {k: [str(v).lower() for v in p["values"]] for k, p in sweep["parameters"].items()}
    assert params == spec.grid
    assert set(spec.overrides) <= {str(c) for c in sweep["command"]}


def test_outside_an_agent_the_command_still_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    sweep = load(next(p for p in SWEEPS if p.stem == "alfworld-main-1.5b"))
    argv = agent_command(sweep, runs_of(sweep)[0])
    result = CliRunner().invoke(__import__("hgpo_cli.cli", fromlist=["app"]).app, ["config", "show", *argv[3:]])
    assert result.exit_code == 0, result.output
    assert "experiment_name: sweep-alfworld-main-1.5b/manual" in result.output
