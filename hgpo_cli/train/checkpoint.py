"""Checkpoint folders of a run: RUN_DIR/checkpoints/iter_XXXXXX/ with policy/ (HF format), optimizer.pt,
rng.pt and state.json. state.json is written last: a folder without it is incomplete and ignored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError


def checkpoint_dir(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"iter_{iteration:06d}"


def write_state(directory: Path, state: dict[str, Any]) -> None:
    """Commit a checkpoint: write state.json atomically."""
    tmp = Path(directory) / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.rename(Path(directory) / "state.json")


def read_state(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "state.json").read_text())


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = Path(run_dir) / "checkpoints"
    complete = sorted(p for p in root.glob("iter_*") if (p / "state.json").is_file()) if root.is_dir() else []
    return complete[-1] if complete else None


def resolve_resume(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint to continue from: `auto` (latest or none), `never`, or an explicit path."""
    if resume == "never":
        return None
    if resume == "auto":
        return latest_checkpoint(run_dir)
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise UserError(f"trainer.resume={resume}: not a complete checkpoint folder (no state.json)")
    return path


def prune_incomplete(run_dir: Path) -> None:
    """Remove checkpoint folders a crash left without state.json."""
    root = Path(run_dir) / "checkpoints"
    if root.is_dir():
        for path in root.glob("iter_*"):
            if not (path / "state.json").is_file():
                shutil.rmtree(path, ignore_errors=True)
