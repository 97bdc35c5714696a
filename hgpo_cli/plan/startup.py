"""The memory plan at the start of `hgpo train`.

On a GPU run the trainer calls `check_training` once the device is known and before it loads a model,
starts an actor or writes into the run folder: when the plan does not fit, the run stops with one line
(a UserError, exit 2) that names what would fit. `trainer.memory_check=false` skips the stop (the plan is
a worst case: every sample padded to the prompt and response limits). On CPU the plan is only recorded:
`record_plan` writes RUN_DIR/plan.json (the `hgpo plan --json` object) once the run has started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.plan.settings import DEFAULT_GPU_MEM_GIB


def local_gpu_mem_gib() -> float:
    """Memory of this machine's first GPU in GiB (torch, when it sees one), else the plan's default (80)."""
    try:
        import torch

        if torch.cuda.is_available():
            return float(torch.cuda.get_device_properties(0).total_memory) / 2**30
    except Exception:  # noqa: BLE001 - no usable CUDA here: the default stands
        pass
    return DEFAULT_GPU_MEM_GIB


def training_plan(cfg: Any, device: str) -> tuple[Any, str] | None:
    """(verdict, shape source) of the run as `hgpo train` will start it on `device`; None when the model's
    shape is unknown (no config.json here and not a known model): such a run is not planned."""
    from hgpo_cli.plan import plan_config

    on_gpu = device == "cuda"
    try:
        return plan_config(cfg, gpu_mem_gib=local_gpu_mem_gib() if on_gpu else None, on_gpu=on_gpu)
    except UserError:
        return None


def check_training(cfg: Any, device: str) -> Any:
    """On a GPU run: UserError when the plan does not fit (unless trainer.memory_check=false). Returns the
    verdict (None when the run could not be planned)."""
    planned = training_plan(cfg, device)
    if planned is None:
        return None
    verdict, _ = planned
    from omegaconf import OmegaConf

    enabled = OmegaConf.select(cfg, "trainer.memory_check", default=True)
    if device == "cuda" and enabled is not False and not verdict.fits:
        raise UserError(
            f"memory plan: {verdict.line()} (`hgpo plan` shows the table; trainer.memory_check=false runs anyway)"
        )
    return verdict


def record_plan(cfg: Any, device: str, run_dir: Path) -> Path | None:
    """RUN_DIR/plan.json: the plan of the run (as `hgpo plan --json` prints it); None when not planned."""
    from hgpo_cli.plan.report import plan_json

    planned = training_plan(cfg, device)
    if planned is None:
        return None
    verdict, source = planned
    path = Path(run_dir) / "plan.json"
    data = plan_json(verdict, preset="", model=str(cfg.model.path), shape_source=source)
    data.pop("preset")
    data.update({"experiment_name": str(cfg.trainer.experiment_name), "device": device})
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
