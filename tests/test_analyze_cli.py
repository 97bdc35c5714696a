"""`hgpo analyze bias|learn|groups|envs` through the command line, on small settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hgpo_cli.agent.records import StepRecord
from hgpo_cli.analyze.bias import parse_estimator
from hgpo_cli.analyze.groups import analyze_groups
from hgpo_cli.analyze.learn import LearnConfig, run_learn, train_one
from hgpo_cli.analyze.pomdp import build_chain, make_env
from hgpo_cli.commands import analyze_cmd
from hgpo_cli.errors import UserError

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A root app with only the analyze commands (independent of the other command modules)."""
    root = typer.Typer()
    analyze_cmd.register(root)

    @root.callback()
    def _root() -> None:
        """Test root."""

    return root


def test_bias_json_and_outputs(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "bias"
    res = runner.invoke(
        app,
        [
            "analyze",
            "bias",
            "--env",
            "twostep",
            "--env",
            "twostep-clear",
            "--samples",
            "100",
            "--history-lengths",
            "1",
            "--alphas",
            "1",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["env"] for r in data["runs"]] == ["twostep", "twostep-clear"]
    labels = [e["label"] for e in data["runs"][0]["estimators"]]
    assert labels[:5] == ["oracle R-V(h)", "oracle R-Vbar(w)", "rloo", "grpo", "gigpo"]
    assert "hgpo K1 a1 recipe +base" in labels and "hgpo K1 a1 paper" in labels
    row = data["runs"][0]["estimators"][0]
    assert set(row["history"]) >= {"bias2", "variance", "mse", "corr", "wrong_sign", "wrong_sign_mean"}
    assert data["runs"][0]["levels"][0]["share_in_nonsingleton"] == 1.0  # all 8 rollouts share each anchor
    assert set(data["provenance"]) == {"command", "seconds", "date", "git_commit"}
    for name in ("bias.json", "table.md", "bias_twostep_scripted.png", "bias_twostep-clear_scripted.png"):
        assert (out / name).stat().st_size > 0
    assert "| oracle R-V(h) | - |" in (out / "table.md").read_text()


def test_bias_estimator_specs_and_tables(app: typer.Typer) -> None:
    res = runner.invoke(
        app,
        [
            "analyze",
            "bias",
            "--env",
            "keydoor:rooms=3,horizon=12",
            "--policy",
            "random",
            "--samples",
            "20",
            "--estimator",
            "gigpo:norm=mean_norm",
            "--estimator",
            "hgpo:history_length=3,base_group=true",
            "--target",
            "window",
        ],
        env={"COLUMNS": "300"},
    )
    assert res.exit_code == 0, res.output
    assert "gigpo:norm=mean_norm" in res.output and "hierarchy levels" in res.output


def test_bias_rejects_bad_input(app: typer.Typer) -> None:
    res = runner.invoke(app, ["analyze", "bias", "--env", "nowhere", "--samples", "5"])
    assert isinstance(res.exception, UserError)
    res = runner.invoke(app, ["analyze", "bias", "--env", "twostep", "--estimator", "hgpo:beta=1"])
    assert isinstance(res.exception, UserError)
    res = runner.invoke(app, ["analyze", "bias", "--target", "future"])
    assert isinstance(res.exception, UserError)


def test_parse_estimator() -> None:
    spec = parse_estimator("hgpo:history_length=4,alpha=2,weighting=paper,norm=mean_norm")
    assert spec.params == {"history_length": 4, "alpha": 2, "weighting": "paper", "norm": "mean_norm"}
    assert spec.norm == "mean_norm" and parse_estimator("rloo").norm == "-"


def test_learn_is_deterministic_and_learns() -> None:
    chain = build_chain(make_env("twostep-clear").compile(), 0)
    spec = parse_estimator("gigpo:norm=mean_std_norm")
    cfg = LearnConfig(env="twostep-clear", policy_history=0, iterations=15, groups_per_iteration=4, lr=0.2)
    a = train_one(chain, spec, 3, cfg)
    b = train_one(chain, spec, 3, cfg)
    assert a == b
    assert len(a["success_exact"]) == 16 and len(a["pg_loss"]) == 15
    assert a["success_exact"][0] == pytest.approx(0.5)
    assert a["success_exact"][-1] > 0.9


def test_learn_command(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "learn"
    res = runner.invoke(
        app,
        [
            "analyze",
            "learn",
            "--env",
            "twostep",
            "--seeds",
            "2",
            "--iterations",
            "3",
            "--groups",
            "2",
            "--estimator",
            "grpo",
            "--estimator",
            "hgpo:history_length=1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "learn.json").read_text())
    assert set(data["curves"]) == {"grpo", "hgpo:history_length=1"}
    assert len(data["curves"]["grpo"]) == 2 and len(data["curves"]["grpo"][0]["success_exact"]) == 4
    assert data["estimators"]["grpo"]["params"] == {"norm": "mean_std_norm"}
    assert (out / "learn.png").stat().st_size > 0 and "final success" in (out / "table.md").read_text()


def test_run_learn_summary() -> None:
    res = run_learn(LearnConfig(env="twostep", estimators=["rloo"], seeds=[0, 1], iterations=2))
    s = res["summary"]["rloo"]
    assert s["final_min"] <= s["final_mean"] <= s["final_max"]


# ----------------------------------------------------------------------------------------------------
# analyze groups on a synthetic run folder
# ----------------------------------------------------------------------------------------------------


def write_run(root: Path, iterations: dict[int, list[list[str]]], k: int | None = 2) -> Path:
    """A run folder: one group "g0" per iteration, trajectory j with the given anchors."""
    (root / "rollouts").mkdir(parents=True)
    if k is not None:
        (root / "config.yaml").write_text(f"algorithm:\n  name: hgpo\n  hgpo:\n    history_length: {k}\n")
    for it, trajs in iterations.items():
        lines = []
        for j, anchors in enumerate(trajs):
            for t, anchor in enumerate(anchors):
                rec = StepRecord(
                    group_id="g0",
                    traj_id=f"t{j}",
                    step_index=t,
                    prompt="p",
                    response="r",
                    action="a",
                    reward=10.0 if (j == 0 and t == len(anchors) - 1) else 0.0,
                    done=t == len(anchors) - 1,
                    valid=True,
                    anchor=anchor,
                    won=j == 0,
                )
                lines.append(json.dumps(rec.to_dict()))
        lines.reverse()  # file order must not matter: steps are sorted by (group, trajectory, step)
        (root / "rollouts" / f"iter_{it:06d}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_groups_counts_by_hand(tmp_path: Path) -> None:
    """Iteration 0: trajectories [o1 o2 o3] and [o1 o2 o4].
    Level 0: groups o1 (2), o2 (2), o3 (1), o4 (1) -> 4 of 6 steps grouped.
    Level 1: (o1,o2) x2, (o2,o3), (o2,o4) -> 2 of 6 grouped. Level 2: (o1,o2,o3), (o1,o2,o4) -> 0.
    Iteration 3: [x x x] and [x x]: level 0 one group of 5; level 1 (x,x) x3 -> 3; level 2 (x,x,x) x1 -> 0."""
    run = write_run(tmp_path / "run", {0: [["o1", "o2", "o3"], ["o1", "o2", "o4"]], 3: [["x", "x", "x"], ["x", "x"]]})
    res = analyze_groups(run)
    assert res["history_length"] == 2 and res["history_length_from_config"] == 2
    it0, it3 = res["iterations"]
    assert (it0["iteration"], it3["iteration"]) == (0, 3)
    assert [it0["levels"][str(k)]["steps_grouped"] for k in range(3)] == [4, 2, 0]
    assert [it0["levels"][str(k)]["groups"] for k in range(3)] == [4, 3, 2]
    assert it0["levels"]["0"]["size_hist"] == {"1": 2, "2": 2}
    assert it0["levels"]["0"]["share_in_nonsingleton"] == pytest.approx(4 / 6)
    assert [it3["levels"][str(k)]["steps_grouped"] for k in range(3)] == [5, 3, 0]
    assert it0["success"] == 0.5 and it0["trajectories"] == 2
    assert res["pooled"]["0"]["steps_grouped"] == 9 and res["pooled"]["0"]["share_in_nonsingleton"] == pytest.approx(
        9 / 11
    )
    assert res["pooled"]["1"]["size_hist"] == {"1": 2, "2": 1, "3": 1}


def test_groups_command_and_errors(app: typer.Typer, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {1: [["a", "b"], ["a", "c"]]}, k=None)
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", "groups", str(run), "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["history_length"] == 4 and data["history_length_from_config"] is None
    assert (out / "groups.png").stat().st_size > 0 and (out / "groups.json").is_file()
    res = runner.invoke(app, ["analyze", "groups", str(run), "--levels", "1"], env={"COLUMNS": "300"})
    assert res.exit_code == 0 and "L1 grouped" in res.output
    res = runner.invoke(app, ["analyze", "groups", str(tmp_path / "missing")])
    assert isinstance(res.exception, UserError)
    (run / "rollouts" / "iter_000002.jsonl").write_text("{not json}\n")
    res = runner.invoke(app, ["analyze", "groups", str(run)])
    assert isinstance(res.exception, UserError) and "iter_000002.jsonl:1" in str(res.exception)


def test_real_cli_lists_the_family() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "analyze", "envs"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "keydoor-clear" in res.stdout and "maze-slip" in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "analyze", "bias", "--env", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and res.stderr.startswith("hgpo: error: unknown analyze environment")


def test_learn_saves_a_run_that_groups_reads(app: typer.Typer, tmp_path: Path) -> None:
    """`analyze learn --save-rollouts` writes the trainer's run format; `analyze groups` reads it back."""
    res = runner.invoke(
        app,
        [
            "analyze",
            "learn",
            "--env",
            "keydoor:rooms=3,horizon=10",
            "--seeds",
            "1",
            "--iterations",
            "2",
            "--groups",
            "2",
            "--estimator",
            "hgpo:history_length=3",
            "--save-rollouts",
            str(tmp_path / "runs"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "hgpo_history_length_3"
    lines = (run / "rollouts" / "iter_000001.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert set(rec) == set(StepRecord("g", "t", 0, "", "", "", 0.0, False, True, "").to_dict())
    result = analyze_groups(run)
    assert result["history_length"] == 3 and len(result["iterations"]) == 2
    assert result["iterations"][1]["steps"] == len(lines)
    assert result["iterations"][0]["task_groups"] == 2 and result["iterations"][0]["trajectories"] == 16
