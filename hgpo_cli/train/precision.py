"""The dtype policy of the trained policy: master weights, compute, export.

The trained weights and their AdamW state live in `model.master_dtype` (fp32 unless asked otherwise);
forward and backward passes run in `model.dtype`, the compute dtype, through FSDP2's mixed precision
(parameters cast on the fly, gradients reduced in fp32). The reference model and the rollout engine hold
`model.dtype` copies. An AdamW step at lr 1e-6 is below half a bf16 ulp of a typical weight (|w| ~ 0.02:
ulp 1.2e-4), so bf16 master weights round most updates away; that is why fp32 is the default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

LOW_PRECISION_MASTER_WARNING = (
    "warning: model.master_dtype={dtype}: AdamW updates at lr ~1e-6 are below half a {dtype} ulp of the "
    "weights and round away (most weights never move); keep float32 master weights"
)


@dataclass(frozen=True)
class Precision:
    """master: trained weights and optimizer state; compute: forward/backward, reference model, engine;
    save: the exported HF policy."""

    master: torch.dtype
    compute: torch.dtype
    save: torch.dtype

    @property
    def mixed(self) -> bool:
        """True when the forward pass runs in another dtype than the master weights."""
        return self.master != self.compute

    def names(self) -> dict[str, str]:
        inverse = {v: k for k, v in DTYPES.items()}
        return {"master": inverse[self.master], "compute": inverse[self.compute], "save": inverse[self.save]}


def precision_of(model_cfg: dict[str, Any], trainer_cfg: dict[str, Any], *, warn: bool = True) -> Precision:
    """The dtype policy of a `model` and `trainer` config section (dicts, as a PolicyWorker takes them).

    Prints one warning line on stderr when the master weights are not fp32 (`warn`: the rank that talks).
    """
    master_name = model_cfg.get("master_dtype") or "float32"
    master = DTYPES[master_name]
    compute = DTYPES[model_cfg.get("dtype") or "float32"]
    save_name = trainer_cfg.get("save_dtype") or master_name
    if warn and master != torch.float32:
        print(LOW_PRECISION_MASTER_WARNING.format(dtype=master_name), file=sys.stderr, flush=True)
    return Precision(master=master, compute=compute, save=DTYPES[save_name])
