"""Rollouts with the trainer's own policy module (verl's hybrid engine, on one process).

With one unsharded trainer rank and the HF engine, the rank-0 policy worker can sample with the very
module it trains: no second copy of the weights and no weight sync after each update. Generation runs in
eval mode under `torch.no_grad`; the module goes back to the mode it was in (train) afterwards, and the
torch RNG the engine reseeds for sampling is restored, so the worker's own random state is as if the
engine lived in another process.
"""

from __future__ import annotations

from typing import Any

import torch

from hgpo_cli.engines.base import Generation, SamplingSettings
from hgpo_cli.engines.hf import HFEngine


class SharedPolicyEngine:
    """An HFEngine over `module` (the policy the optimizer updates in place); `load_weights` is a no-op
    because the engine always sees the current weights."""

    def __init__(
        self,
        module: torch.nn.Module,
        tokenizer: Any,
        *,
        batch_size: int,
        device: str,
        dedup_prefill: bool = False,
        prefill_chunk: int = 0,
    ) -> None:
        was_training = module.training
        self.module = module
        # HFEngine sets eval mode
        self.engine = HFEngine(
            module,
            tokenizer,
            batch_size=batch_size,
            device=device,
            dedup_prefill=dedup_prefill,
            prefill_chunk=prefill_chunk,
        )
        module.train(was_training)
        self.device = torch.device(device)

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        """As `HFEngine.generate`, in eval mode, leaving the module's mode and the torch RNG as they were."""
        was_training = self.module.training
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.module.eval()
            try:
                return self.engine.generate(prompts, settings)
            finally:
                self.module.train(was_training)

    def load_weights(self, state_dict: dict[str, Any], partial: bool = False) -> None:
        """Nothing to copy: the engine samples with the trained module itself."""

    def close(self) -> None:
        self.engine.model = None
