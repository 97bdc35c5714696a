"""How much of a run's checkpoints stays on disk (`trainer.keep_checkpoints`, `trainer.keep_final_optimizer`).

Resuming reads only the newest complete checkpoint, so only that one keeps the training state (the
optimizer state, RNG states, and any sharded model/optimizer folder the policy workers write). Older
checkpoints keep `policy/` (the HF weights `hgpo eval` reads), `state.json` and their evaluation files
(`eval-*`); all but the newest `keep_checkpoints` of them are removed altogether (0 keeps every one).
When a run has finished, its final checkpoint drops that training state too unless
`trainer.keep_final_optimizer` is set (it is only needed to extend the run with more iterations at the
exact Adam state; without it such a run restarts Adam's moments, and says so).

Sizes for the 135M default (float32, 134.5M weights): policy/ 538 MB; the training state of a checkpoint
(Adam's two moments, 1.08 GB, with sharded/ also a copy of the weights) about 1.6 GB. Two iterations with
save_freq 1 left 3.1 GB before; now the newest checkpoint alone holds training state while the run goes
on (about 2.2 GB at the peak), and a finished run keeps two policies, about 1.08 GB.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# What an older checkpoint keeps: the HF policy, a LoRA run's adapter weights (a few MB; resuming LoRA
# reads them), the commit marker, and evaluation results.
KEPT_NAMES = ("policy", "adapter", "state.json")
KEPT_PREFIXES = ("eval-",)
CRITIC_NAME = "critic"  # hgpo_cli.train.critic_worker.CRITIC_DIR (not imported: that module needs torch)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoint folders of a run (with state.json), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("iter_*") if (p / "state.json").is_file())


def _remove(path: Path) -> int:
    """Delete a file or folder; returns the bytes freed."""
    size = folder_size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


def strip_training_state(checkpoint: Path, *, keep_critic_weights: bool = False) -> int:
    """Remove everything but policy/, state.json and eval-* from a checkpoint folder; returns bytes freed.

    keep_critic_weights: the critic's value model (critic/ without its optimizer.pt) stays too: a finished
    PPO run's final checkpoint is the only place its trained critic lives."""
    freed = 0
    for entry in Path(checkpoint).iterdir():
        if entry.name in KEPT_NAMES or entry.name.startswith(KEPT_PREFIXES):
            continue
        if keep_critic_weights and entry.name == CRITIC_NAME and entry.is_dir():
            freed += _remove(entry / "optimizer.pt")
            continue
        freed += _remove(entry)
    return freed


def prune_checkpoints(run_dir: Path, keep: int, *, finished: bool = False, keep_final_optimizer: bool = True) -> int:
    """Apply the retention rules after a save; returns the bytes freed.

    keep: how many of the newest checkpoints keep policy/ (0: all). finished: the newest checkpoint is the
    run's last; then its training state goes too unless keep_final_optimizer.
    """
    checkpoints = complete_checkpoints(run_dir)
    if not checkpoints:
        return 0
    freed = 0
    *older, newest = checkpoints
    for checkpoint in older:
        freed += strip_training_state(checkpoint)
    if keep > 0:
        for checkpoint in checkpoints[: max(0, len(checkpoints) - keep)]:
            freed += _remove(checkpoint)
    if finished and not keep_final_optimizer:
        freed += strip_training_state(newest, keep_critic_weights=True)
    return freed


def has_training_state(checkpoint: Path) -> bool:
    """Whether a checkpoint holds more than what an older one keeps (optimizer or sharded state); a critic's
    weights kept without their optimizer state do not count."""
    path = Path(checkpoint)
    return (path / CRITIC_NAME / "optimizer.pt").is_file() or any(
        e.name not in KEPT_NAMES
        and e.name != CRITIC_NAME
        and not e.name.startswith(KEPT_PREFIXES)
        and not e.name.startswith("rng")
        for e in path.iterdir()
    )


def folder_size(path: Path) -> int:
    """Bytes held by the files under `path` (a file: its size; missing: 0). Symlinks are not followed."""
    path = Path(path)
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def human_size(size: int) -> str:
    """1536 -> '1.5 KB' (powers of 1000, as disk sizes are sold)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
