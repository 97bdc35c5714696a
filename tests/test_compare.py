"""`hgpo compare`: run folders built here (config.yaml from load_config, eval JSON and metrics written by the
test), the pooled numbers checked against hand computation, the published numbers, CSV and PNGs."""

from __future__ import annotations

import csv
import json
import random
import statistics
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from hgpo_cli.cli import app
from hgpo_cli.config import load_config, to_yaml
from hgpo_cli.eval.compare import (
    COLUMNS,
    Moments,
    build_rows,
    compare,
    record_from_run_dir,
    records_from_wandb,
)
from hgpo_cli.eval.published import PUBLISHED, published_for

ALF_TYPES = ("Pick", "Look", "Clean", "Heat", "Cool", "Pick2")


def make_run(
    root: Path,
    preset: str,
    overrides: list[str],
    evals: dict[str, dict[int, dict[str, float]]],
    curve: list[float] = (),
    iteration: int = 4,
) -> Path:
    """A finished, evaluated run: config.yaml, checkpoints/iter_*/(state.json, policy/eval-*.json), metrics."""
    cfg = load_config(preset, overrides)
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(to_yaml(cfg))
    old = root / "checkpoints" / "iter_000002"
    old.mkdir(parents=True)
    (old / "state.json").write_text("{}")
    # an evaluation of an older checkpoint must be ignored
    (old / "eval-x.json").write_text(json.dumps({"split": "eval_in_distribution", "per_seed": {"1": {"All": 0.0}}}))
    ckpt = root / "checkpoints" / f"iter_{iteration:06d}"
    (ckpt / "policy").mkdir(parents=True)
    (ckpt / "state.json").write_text("{}")
    env = cfg.env.name
    for split, per_seed in evals.items():
        report = {
            "checkpoint": str(ckpt / "policy"),
            "env": env,
            "split": split,
            "seeds": list(per_seed),
            "per_seed": {str(k): v for k, v in per_seed.items()},
        }
        (ckpt / "policy" / f"eval-{env}-{split}.json").write_text(json.dumps(report))
    with (root / "metrics.jsonl").open("w") as handle:
        for i, rate in enumerate(curve, 1):
            handle.write(json.dumps({"iteration": i, "rollout/success_rate": rate}) + "\n")
    return root


def alf(all_: float, pick: float = 90.0) -> dict[str, float]:
    return {"Pick": pick, "Look": 50.0, "Clean": 80.0, "Heat": 70.0, "Cool": 60.0, "Pick2": 40.0, "All": all_}


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    alf_preset = "alfworld-qwen2.5-1.5b"
    # HGPO K=2, two training seeds, three evaluation seeds each; also evaluated out of distribution (seed 0)
    make_run(
        root / "hgpo-s0",
        alf_preset,
        ["trainer.seed=0", "trainer.experiment_name=hgpo-s0"],
        {
            "eval_in_distribution": {123: alf(90.0, 100.0), 456: alf(92.0, 90.0), 789: alf(94.0, 80.0)},
            "eval_out_of_distribution": {123: alf(80.0), 456: alf(84.0), 789: alf(88.0)},
        },
        curve=[0.1, 0.3, 0.5],
    )
    make_run(
        root / "hgpo-s1",
        alf_preset,
        [
            "trainer.seed=1",
            "trainer.experiment_name=hgpo-s1",
            "trainer.micro_batch_size=4",
        ],  # a resource setting: same row
        {"eval_in_distribution": {123: alf(96.0, 70.0), 456: alf(86.0, 90.0), 789: alf(88.0, 100.0)}},
        curve=[0.2, 0.4, 0.6],
    )
    make_run(
        root / "gigpo-s0",
        alf_preset,
        ["algorithm.name=gigpo", "trainer.seed=0"],
        {"eval_in_distribution": {123: alf(85.0), 456: alf(87.0), 789: alf(89.0)}},
        curve=[0.1, 0.2],
    )
    # HGPO K=2 on WebShop joins the HGPO K=2 row (the webshop preset is K=4, so override)
    make_run(
        root / "hgpo-webshop",
        "webshop-qwen2.5-1.5b",
        ["algorithm.hgpo.history_length=2"],
        {"test": {123: {"score": 80.0, "All": 60.0}, 456: {"score": 84.0, "All": 66.0}}},
        curve=[0.0, 0.1],
    )
    # the same method x K x model with another alpha: its own row, labelled
    make_run(
        root / "hgpo-alpha2",
        alf_preset,
        ["algorithm.hgpo.alpha=2"],
        {"eval_in_distribution": {123: alf(70.0), 456: alf(72.0)}},
    )
    # trained, never evaluated: a warning, no numbers
    make_run(root / "grpo-unevaluated", alf_preset, ["algorithm.name=grpo"], {})
    return root


def test_table_numbers_pooled_over_training_and_eval_seeds(runs: Path, tmp_path: Path) -> None:
    result = compare([str(runs)], out_dir=tmp_path / "out")
    rows = {r.label: r for r in result["rows"]}
    hgpo = rows["hgpo K=2 Qwen2.5-1.5B-Instruct [alpha=1.0]"]
    values = [90.0, 92.0, 94.0, 96.0, 86.0, 88.0]  # 2 training seeds x 3 evaluation seeds
    assert hgpo.cells["alfworld/All"].mean == pytest.approx(statistics.mean(values))  # 91.0
    assert hgpo.cells["alfworld/All"].std == pytest.approx(statistics.stdev(values))
    assert hgpo.cells["alfworld/All"].n == 6
    assert hgpo.cells["alfworld/Pick"].mean == pytest.approx(statistics.mean([100, 90, 80, 70, 90, 100]))
    assert hgpo.cells["alfworld-ood/All"].mean == pytest.approx(84.0)
    assert hgpo.cells["alfworld-ood/All"].std == pytest.approx(4.0) and hgpo.cells["alfworld-ood/All"].n == 3
    assert hgpo.cells["webshop/score"].mean == pytest.approx(82.0)
    assert hgpo.cells["webshop/success"].mean == pytest.approx(63.0)
    assert hgpo.cells["webshop/success"].std == pytest.approx(statistics.stdev([60.0, 66.0]))
    assert hgpo.counts("alfworld") == "2x3" and hgpo.counts("webshop") == "1x2"
    assert rows["hgpo K=2 Qwen2.5-1.5B-Instruct [alpha=2.0]"].cells["alfworld/All"].mean == pytest.approx(71.0)
    gigpo = rows["gigpo K=2 Qwen2.5-1.5B-Instruct"]
    assert gigpo.cells["alfworld/All"].mean == pytest.approx(87.0) and gigpo.cells["alfworld/All"].std == 2.0
    assert rows["grpo K=2 Qwen2.5-1.5B-Instruct"].cells == {}
    assert any("grpo-unevaluated" in w and "no evaluation" in w for w in result["warnings"])
    # the published numbers beside each row: HGPO paper K=2, and the difference
    assert [(p.source, p.k) for p in hgpo.published] == [("HGPO paper", 2)]
    assert [(p.source, p.k) for p in gigpo.published] == [("HGPO paper", 2), ("GiGPO paper", None)]
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| hgpo | 2 | Qwen2.5-1.5B-Instruct | alpha=1.0 | **ours** | 88.3 ± 11.7 |" in md
    assert "91.0 ± 3.7" in md and "92.77" in md and "90.16" in md and "-1.8" in md  # 91.0 - 92.77
    assert "+4.0" not in md.split("gigpo")[0]  # differences are per row
    assert "ours - GiGPO paper" in md and "GiGPO paper (K not stated)" in md


def test_csv_and_plots(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = compare([str(runs)], out_dir=out)
    lines = list(csv.DictReader(StringIO((out / "comparison.csv").read_text())))
    ours = [r for r in lines if r["row"] == "ours" and r["method"] == "hgpo" and r["setting"] == "alpha=1.0"]
    assert len(ours) == 1
    assert float(ours[0]["alfworld/All"]) == pytest.approx(91.0)
    assert float(ours[0]["alfworld/All_std"]) == pytest.approx(statistics.stdev([90, 92, 94, 96, 86, 88]), abs=1e-4)
    assert ours[0]["alfworld/All_n"] == "6"
    diff = [r for r in lines if r["row"] == "diff" and r["method"] == "hgpo" and r["setting"] == "alpha=1.0"][0]
    assert float(diff["alfworld/All"]) == pytest.approx(91.0 - 92.77)
    assert float(diff["alfworld-ood/All"]) == pytest.approx(84.0 - 90.16)
    names = sorted(p.name for p in result["paths"]["plots"])
    assert names == [
        "alfworld_task_types.png",
        "learning_curves_alfworld.png",
        "learning_curves_webshop.png",
        "webshop.png",
    ]
    for path in result["paths"]["plots"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_learning_curve_is_read_in_percent(runs: Path) -> None:
    record = record_from_run_dir(runs / "hgpo-s0")
    assert record.curve == [(1, 10.0), (2, 30.0), (3, 50.0)]


def test_compare_cli(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["compare", str(runs / "hgpo-s0"), str(runs / "gigpo-s0"), "--out", str(out), "--no-plots"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "92.77" in result.output and "HGPO paper" in result.output
    assert (out / "comparison.md").is_file() and not list(out.glob("*.png"))
    assert CliRunner().invoke(app, ["compare"]).exit_code != 0


def test_match_model_for_small_scale_runs(tmp_path: Path) -> None:
    make_run(tmp_path / "r", "smollm2", [], {"eval_in_distribution": {1: alf(10.0), 2: alf(20.0)}})
    rows, _ = build_rows([record_from_run_dir(tmp_path / "r")])
    assert rows[0].model == "smollm2-135m-instruct" and rows[0].published == []
    rows, _ = build_rows([record_from_run_dir(tmp_path / "r")], match_model="Qwen2.5-1.5B-Instruct")
    assert rows[0].published[0].values["alfworld/All"] == 92.77


def test_moments_pool_is_exact() -> None:
    rng = random.Random(0)
    for _ in range(50):
        parts = [[rng.uniform(0, 100) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(1, 4))]
        pooled = Moments.pool([Moments.of(p) for p in parts])
        flat = [v for p in parts for v in p]
        assert pooled.mean == pytest.approx(statistics.mean(flat))
        assert pooled.std == pytest.approx(statistics.stdev(flat) if len(flat) > 1 else 0.0)
        assert pooled.n == len(flat)


def test_wandb_records(tmp_path: Path) -> None:
    """A stand-in for wandb.Api holding what the trainer and evaluate_checkpoint log."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(load_config("alfworld-qwen2.5-1.5b", ["trainer.experiment_name=a"]), resolve=True)

    def run(name: str, cfg: dict, summary: dict, history: list[dict]) -> SimpleNamespace:
        return SimpleNamespace(
            name=name, id=name, config=cfg, summary=summary, created_at="2026-01-01", scan_history=lambda keys: history
        )

    train = run("a", config, {"iterations_done": 3}, [{"_step": 1, "rollout/success_rate": 0.5}])
    evaluation = run(
        "eval-a",
        {"checkpoint": "x", "split": "eval_in_distribution", "seeds": [1, 2, 3]},
        {
            "eval/eval_in_distribution/All/mean": 90.0,
            "eval/eval_in_distribution/All/std": 2.0,
            "eval/eval_in_distribution/Pick/mean": 80.0,
            "eval/eval_in_distribution/Pick/std": 1.0,
        },
        [],
    )
    api = SimpleNamespace(runs=lambda path: [train, evaluation])
    records = records_from_wandb("hgpo", api=api)
    assert len(records) == 1
    assert records[0].columns["alfworld/All"] == Moments(90.0, 2.0, 3)
    assert records[0].curve == [(1, 50.0)]


def test_published_numbers_are_the_specs() -> None:
    keys = {k for k, _ in COLUMNS}
    assert all(set(p.values) <= keys for p in PUBLISHED)
    hgpo = {(p.model, p.k): p.values for p in PUBLISHED if p.method == "hgpo"}
    assert hgpo[("Qwen2.5-1.5B-Instruct", 2)] == {"alfworld/All": 92.77, "alfworld-ood/All": 90.16}
    assert hgpo[("Qwen2.5-1.5B-Instruct", 4)]["webshop/score"] == 90.64
    assert hgpo[("Qwen2.5-7B-Instruct", 4)] == {
        "alfworld/All": 95.96,
        "alfworld-ood/All": 94.87,
        "webshop/score": 90.49,
        "webshop/success": 79.29,
    }
    gigpo_paper = [p for p in PUBLISHED if p.source == "GiGPO paper" and p.method == "gigpo"][0]
    assert [gigpo_paper.values[f"alfworld/{t}"] for t in ALF_TYPES] == [94.4, 67.5, 94.8, 94.4, 79.8, 76.4]
    assert [p.method for p in published_for("grpo", "Qwen/Qwen2.5-1.5B-Instruct", 4)] == ["grpo", "grpo"]
    assert published_for("grpo", "Qwen2.5-7B-Instruct", 4) == []


def test_a_run_of_no_iterations_is_the_sft_row(tmp_path: Path) -> None:
    """A run with trainer.iterations=0 evaluated its starting policy only (RUN_DIR/eval_before/): compare
    shows it as method `sft`, first, beside the trained runs of the same model, with its own numbers."""
    root = tmp_path / "runs"
    make_run(
        root / "hgpo-s0",
        "default",
        ["trainer.seed=0"],
        {"eval_in_distribution": {123: {"Pick": 20.0, "Look": 10.0, "All": 15.0}, 456: {"All": 25.0}}},
    )
    start = root / "start"
    start.mkdir()
    cfg = load_config("default", ["trainer.iterations=0"])
    (start / "config.yaml").write_text(to_yaml(cfg))
    (start / "eval_before").mkdir()
    per_seed = {"123": {"All": 5.0}, "456": {"All": 10.0}}
    report = {"env": "alfworld", "split": "eval_in_distribution", "per_seed": per_seed}
    (start / "eval_before" / "eval-alfworld-eval_in_distribution.json").write_text(json.dumps(report))
    result = compare([str(root)], out_dir=tmp_path / "out")
    rows = result["rows"]
    assert [r.method for r in rows] == ["sft", "hgpo"]
    assert rows[0].label == "sft K=2 hgpo-cpu-1m"
    assert rows[0].cells["alfworld/All"].mean == pytest.approx(7.5)
    assert rows[0].cells["alfworld/All"].std == pytest.approx(statistics.stdev([5.0, 10.0]))
    assert rows[1].cells["alfworld/All"].mean == pytest.approx(20.0)
    assert not result["warnings"]
