"""Reading hgpo run folders: which run a checkpoint belongs to, a run's newest checkpoint, its evaluations;
parsing the evaluation options (seeds, split names) that `eval`, `ablate` and `compare` share.

Layout (written by the trainer): RUN_DIR/config.yaml, RUN_DIR/metrics.jsonl,
RUN_DIR/checkpoints/iter_XXXXXX/{policy/, state.json}. Evaluation writes eval-<env>-<split>.json into the
folder it was pointed at (the trainer's `eval_after` and `hgpo eval` use the policy/ folder), so both the
checkpoint folder and its policy/ are searched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.train.checkpoint import latest_checkpoint

DEFAULT_SEEDS = (123, 456, 789)

# Plain split names a user may type -> the config's split names.
SPLIT_ALIASES: dict[str, dict[str, str]] = {
    "alfworld": {
        "in": "eval_in_distribution",
        "id": "eval_in_distribution",
        "seen": "eval_in_distribution",
        "valid_seen": "eval_in_distribution",
        "in-distribution": "eval_in_distribution",
        "in_distribution": "eval_in_distribution",
        "eval_in_distribution": "eval_in_distribution",
        "out": "eval_out_of_distribution",
        "ood": "eval_out_of_distribution",
        "unseen": "eval_out_of_distribution",
        "valid_unseen": "eval_out_of_distribution",
        "out-of-distribution": "eval_out_of_distribution",
        "out_of_distribution": "eval_out_of_distribution",
        "eval_out_of_distribution": "eval_out_of_distribution",
        "train": "train",
    },
    "webshop": {"test": "test", "validation": "validation", "valid": "validation", "train": "train"},
}
# The two evaluation splits of a suite, for `--split all`.
ALL_SPLITS = {"alfworld": ["eval_in_distribution", "eval_out_of_distribution"], "webshop": ["test"]}
SPLIT_LABELS = {
    "eval_in_distribution": "in-distribution",
    "eval_out_of_distribution": "out-of-distribution",
}


def parse_seeds(text: str | None, *, minimum: int = 2) -> tuple[int, ...]:
    """'123,456,789' -> (123, 456, 789). Distinct integers, at least `minimum` (a spread needs two)."""
    if text is None or not text.strip():
        return DEFAULT_SEEDS
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers, e.g. 123,456,789") from None
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: a seed is repeated")
    if len(seeds) < minimum:
        raise UserError(
            f"--seeds {text!r}: give at least {minimum} seeds (results are reported as mean and spread over seeds)"
        )
    return seeds


def resolve_splits(env: str, text: str | None, default: str) -> list[str]:
    """Config split names for `--split` (comma-separated plain names, 'all', or unset: `default`)."""
    if text is None or not text.strip():
        return [default]
    aliases = SPLIT_ALIASES[env]
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        names = ALL_SPLITS[env] if part == "all" else [aliases.get(part)]
        if names == [None]:
            allowed = sorted({*aliases, "all"})
            raise UserError(f"--split {part!r} is not one of the {env} splits ({', '.join(allowed)})")
        out += [n for n in names if n not in out]
    return out


def split_label(split: str) -> str:
    """The plain name of a split: 'in-distribution', 'out-of-distribution', or the name itself."""
    return SPLIT_LABELS.get(split, split)


def is_run_dir(path: Path) -> bool:
    """A training run folder: its config and checkpoints, metrics or starting-policy evaluations."""
    return (path / "config.yaml").is_file() and any(
        (path / name).exists() for name in ("checkpoints", "metrics.jsonl", "eval_before")
    )


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run folders named by `paths`: each path is a run folder or a folder searched for run folders."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"run folder not found: {raw}")
        if is_run_dir(path):
            candidates = [path]
        else:
            candidates = sorted(p.parent for p in path.rglob("config.yaml") if is_run_dir(p.parent))
        for candidate in candidates:
            if candidate.resolve() not in {f.resolve() for f in found}:
                found.append(candidate)
    return found


def eval_files(checkpoint: Path) -> list[Path]:
    """The eval-*.json files of a checkpoint folder (itself and its policy/ folder)."""
    checkpoint = Path(checkpoint)
    files = sorted(checkpoint.glob("eval-*.json")) + sorted((checkpoint / "policy").glob("eval-*.json"))
    return files


def eval_file_for(checkpoint: Path, env: str, split: str) -> Path | None:
    for folder in (Path(checkpoint), Path(checkpoint) / "policy"):
        path = folder / f"eval-{env}-{split}.json"
        if path.is_file():
            return path
    return None


def read_eval(path: Path) -> dict[str, Any]:
    """An evaluation report; per_seed keys become ints again (JSON made them strings)."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a readable evaluation file ({err})") from None
    report["per_seed"] = {int(k): v for k, v in report.get("per_seed", {}).items()}
    return report


def newest_evals(run_dir: Path) -> tuple[Path | None, dict[str, dict[str, Any]]]:
    """The newest complete checkpoint of a run and its evaluations, {split: report}."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        return None, {}
    return checkpoint, reports_by_split(eval_files(checkpoint))


def reports_by_split(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """{split: report} of eval-<env>-<split>.json files (the split from the report, else from the name)."""
    reports = {}
    for path in paths:
        report = read_eval(path)
        reports[report.get("split") or path.stem.split("-", 2)[-1]] = report
    return reports


@dataclass
class CheckpointRef:
    """What `hgpo eval` evaluates: the model to load, where results go, and the run it came from."""

    model: str  # a local HF folder, an HF hub id, or embedded:<name>
    out_dir: Path | None  # None: not a local folder (the caller picks)
    run_dir: Path | None  # the hgpo run folder, when the checkpoint lies inside one


def _run_of_policy(policy: Path) -> Path | None:
    iter_dir = policy.parent
    if policy.name == "policy" and re.fullmatch(r"iter_\d+", iter_dir.name) and iter_dir.parent.name == "checkpoints":
        run_dir = iter_dir.parent.parent
        if (run_dir / "config.yaml").is_file():
            return run_dir
    return None


def locate_checkpoint(target: str) -> CheckpointRef:
    """Accepts an HF folder (…/checkpoints/iter_*/policy or any other), a checkpoint folder iter_*, an hgpo
    run folder (its newest checkpoint), an HF hub id or embedded:<name>."""
    if target.startswith("embedded:"):
        return CheckpointRef(target, None, None)
    path = Path(target).expanduser()
    if not path.exists():
        if target.startswith((".", "/", "~")) or target.count("/") != 1:
            raise UserError(f"checkpoint not found: {target} (an HF folder, a checkpoint or run folder, or a hub id)")
        return CheckpointRef(target, None, None)  # an HF hub id such as Qwen/Qwen2.5-1.5B-Instruct
    if not path.is_dir():
        raise UserError(f"checkpoint {target} is not a folder")
    if (path / "config.json").is_file():
        return CheckpointRef(str(path), path, _run_of_policy(path.resolve()))
    if (path / "policy" / "config.json").is_file():
        policy = path / "policy"
        return CheckpointRef(str(policy), policy, _run_of_policy(policy.resolve()))
    if is_run_dir(path):
        newest = latest_checkpoint(path)
        if newest is None or not (newest / "policy" / "config.json").is_file():
            raise UserError(f"run folder {target} has no complete checkpoint yet")
        return CheckpointRef(str(newest / "policy"), newest / "policy", path)
    raise UserError(f"{target} is not an HF-format checkpoint (no config.json), a checkpoint folder or a run folder")


def short_model_name(path: str) -> str:
    """'Qwen/Qwen2.5-1.5B-Instruct' -> 'Qwen2.5-1.5B-Instruct'; 'embedded:tiny-qwen2' -> 'tiny-qwen2'."""
    text = str(path).rstrip("/")
    if text.startswith("embedded:"):
        return text.split(":", 1)[1]
    name = text.rsplit("/", 1)[-1]
    if name == "policy":  # a checkpoint used as the starting model: name the run instead
        parts = text.split("/")
        name = parts[-4] if len(parts) >= 4 else name
    return name


def eval_config(ref: CheckpointRef, preset: str | None, overrides: list[str], env: str | None) -> tuple[Any, str]:
    """The config an evaluation runs with, and where it came from: the run's config.yaml when the checkpoint
    lies inside an hgpo run and no preset is named, else the preset ('default' when none); then overrides,
    then `env` (env.name) when given."""
    from hgpo_cli.config import load_config

    if env is not None and env not in ALL_SPLITS:
        raise UserError(f"--env {env!r}: one of {', '.join(ALL_SPLITS)}")
    # an evaluation loads the checkpoint it is given, never the preset's `hgpo sft` warm start
    extra = ["model.sft_epochs=0", *overrides] + ([f"env.name={env}"] if env else [])
    if preset is None and ref.run_dir is not None:
        path = ref.run_dir / "config.yaml"
        return load_config(str(path), extra), f"the run's config {path}"
    return load_config(preset, extra), f"preset {preset or 'default'}"


def default_out_dir(ref: CheckpointRef) -> Path:
    """Next to the checkpoint; runs/eval/<name> for a hub id or an embedded model."""
    if ref.out_dir is not None:
        return ref.out_dir
    return Path("runs") / "eval" / ref.model.replace("embedded:", "").replace("/", "--")
