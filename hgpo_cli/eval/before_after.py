"""RUN_DIR/summary.json: success of the starting policy and of the trained one, on the same games and seeds.

Written by a training run with `trainer.eval_before` and `trainer.eval_after` (the default preset's main
job). Fractions in [0, 1]; the spread is the sample standard deviation over evaluation seeds
(`eval/summary.py`), and `difference_std` that of the paired per-seed differences (same seed, same games
before and after). `clear` says whether the gain exceeds its noise: the mean difference is larger than
the spread before plus the spread after.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SUMMARY_FILE = "summary.json"


def _success_per_seed(report: dict[str, Any]) -> dict[int, float]:
    """{seed: success fraction} from an evaluation report (its per-seed 'All' column is in percent)."""
    return {int(seed): float(row["All"]) / 100.0 for seed, row in report["per_seed"].items()}


def before_after(before: dict[str, Any] | None, after: dict[str, Any] | None, iterations: int) -> dict[str, Any]:
    """The summary of two evaluation reports (either may be missing: its keys are then null).

    Each report: {"split", "seeds", "tasks", "per_seed": {seed: {"All": percent, ...}}}.
    """
    out: dict[str, Any] = {"iterations": iterations}
    seeds: list[int] = []
    per: dict[str, dict[int, float]] = {}
    for name, report in (("before", before), ("after", after)):
        if report is None:
            out[f"success_{name}"] = out[f"success_{name}_std"] = None
            out[f"success_{name}_per_seed"] = None
            continue
        values = _success_per_seed(report)
        per[name] = values
        seeds = seeds or sorted(values)
        array = np.array([values[s] for s in sorted(values)], dtype=np.float64)
        out[f"success_{name}"] = float(array.mean())
        out[f"success_{name}_std"] = float(array.std(ddof=1)) if array.size > 1 else 0.0
        out[f"success_{name}_per_seed"] = [values[s] for s in sorted(values)]
        out["eval_episodes"] = int(report["tasks"])
        out["eval_split"] = str(report["split"])
    out["eval_seeds"] = seeds
    out.setdefault("eval_episodes", 0)
    if len(per) == 2 and sorted(per["before"]) == sorted(per["after"]):
        diffs = np.array([per["after"][s] - per["before"][s] for s in sorted(per["after"])], dtype=np.float64)
        out["difference"] = float(diffs.mean())
        out["difference_std"] = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
        out["clear"] = bool(out["difference"] > out["success_before_std"] + out["success_after_std"])
    return out


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> Path:
    """RUN_DIR/summary.json (indented JSON)."""
    path = Path(run_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def summary_table(summary: dict[str, Any]) -> str:
    """Plain-text lines for the end of `hgpo train`: success before and after, mean ± std over seeds."""

    def cell(name: str) -> str:
        mean, std = summary.get(f"success_{name}"), summary.get(f"success_{name}_std")
        return "-" if mean is None else f"{100 * mean:5.1f}% ± {100 * std:4.1f}"

    seeds = ", ".join(map(str, summary.get("eval_seeds", [])))
    lines = [
        f"success on {summary.get('eval_split', '?')} ({summary.get('eval_episodes', 0)} games x seeds {seeds}):",
        f"  before training  {cell('before')}",
        f"  after {summary.get('iterations', 0):>3} its    {cell('after')}",
    ]
    if "difference" in summary:
        verdict = "larger than the spread" if summary["clear"] else "within the spread"
        lines.append(
            f"  difference       {100 * summary['difference']:+5.1f} points "
            f"(paired std {100 * summary['difference_std']:.1f}; {verdict})"
        )
    return "\n".join(lines)


BEFORE_DIR = "eval_before"


def _evaluate_with_trainer(
    cfg: Any, trainer: Any, *, label: str, out_dir: Path, ui: Any = None, logger: Any = None
) -> dict[str, Any]:
    """The policy behind the trainer's own engine, played in its own environment pool on the eval_after
    splits (the games and seeds of `evaluate_checkpoint`); {split: report}, each written into `out_dir`."""
    from hgpo_cli.eval.evaluate import evaluate_with
    from hgpo_cli.eval.runs import resolve_splits

    env = cfg.env.name
    reports: dict[str, Any] = {}
    for split in resolve_splits(env, cfg.trainer.eval_splits, cfg.env[env].eval_split):
        reports[split] = evaluate_with(
            cfg,
            trainer.generate,
            trainer.pool,
            trainer.tokenizer,
            label=label,
            split=split,
            seeds=tuple(int(s) for s in cfg.trainer.eval_seeds),
            episodes=int(cfg.trainer.eval_episodes) or None,
            out_dir=out_dir,
            ui=ui,
            logger=logger,
        )
    return reports


def evaluate_start(cfg: Any, trainer: Any, done: int, ui: Any = None, logger: Any = None) -> dict[str, Any]:
    """`trainer.eval_before`: the starting policy evaluated with the trainer's own engine and environments
    before the first update, on the eval_after splits, into RUN_DIR/eval_before/; {split: report}.

    A resumed run (done > 0) reads the reports its first start wrote instead (empty when there are none).
    """
    from hgpo_cli.eval.runs import resolve_splits

    out_dir = Path(trainer.run_dir) / BEFORE_DIR
    if done == 0:
        label = str(trainer.model_path)
        return _evaluate_with_trainer(cfg, trainer, label=label, out_dir=out_dir, ui=ui, logger=logger)
    env = cfg.env.name
    reports: dict[str, Any] = {}
    for split in resolve_splits(env, cfg.trainer.eval_splits, cfg.env[env].eval_split):
        path = out_dir / f"eval-{env}-{split}.json"
        if path.is_file():
            reports[split] = json.loads(path.read_text())
    return reports


def evaluate_end(cfg: Any, trainer: Any, checkpoint: Path, ui: Any = None, logger: Any = None) -> dict[str, Any]:
    """`trainer.eval_after`: the final policy, which the trainer's engine holds after the last weight sync,
    evaluated with that engine and the environment pool already up (no second engine, no second load of
    the evaluation games); the reports go into the checkpoint's policy folder, as `hgpo eval` of it
    writes them, and are the same (tests/test_main_job.py); {split: report}."""
    policy = Path(checkpoint) / "policy"
    return _evaluate_with_trainer(cfg, trainer, label=str(policy), out_dir=policy, ui=ui, logger=logger)
