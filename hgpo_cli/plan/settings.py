"""What a memory plan depends on, read from a run config (`PlanSettings.from_config`).

The plan's GPU count is the number of GPUs the trainer shards over: one trainer rank per GPU, so
`gpus` is FSDP2's world size (`trainer.num_workers` by default). The rollout engine (one actor) shares the
first of those GPUs with rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hgpo_cli.errors import UserError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
DEFAULT_GPU_MEM_GIB = 80.0

# config key -> PlanSettings field: what a suggestion may change (`PlanSettings.with_override`)
OVERRIDE_FIELDS = {
    "trainer.num_workers": "gpus",
    "trainer.micro_batch_size": "micro_batch_size",
    "trainer.fsdp.offload_params": "offload_params",
    "trainer.fsdp.offload_optimizer": "offload_optimizer",
    "trainer.fsdp.offload_reference": "offload_reference",
    "model.gradient_checkpointing": "gradient_checkpointing",
    "rollout.gpu_memory_utilization": "gpu_memory_utilization",
    "rollout.batch_size": "engine_batch_size",
}


def dtype_bytes(name: str) -> int:
    if name not in DTYPE_BYTES:
        raise UserError(f"unknown dtype '{name}' (one of {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[name]


@dataclass(frozen=True)
class PlanSettings:
    """The settings the memory plan reads. Tokens: every micro-batch is planned at its worst case, each
    sample padded to prompt_tokens + response_tokens (the rollout's limits)."""

    gpus: int = 1
    gpu_mem_gib: float = DEFAULT_GPU_MEM_GIB
    master_dtype: str = "float32"
    compute_dtype: str = "float32"
    lora_rank: int = 0
    gradient_checkpointing: bool = False
    offload_params: bool = False
    offload_optimizer: bool = False
    offload_reference: bool = False
    reshard_after_forward: bool = True
    use_reference: bool = True
    entropy: bool = True
    scaled_logits: bool = False
    micro_batch_size: int = 8
    prompt_tokens: int = 4096
    response_tokens: int = 512
    engine: str = "hf"
    engine_batch_size: int = 64
    gpu_memory_utilization: float = 0.5
    on_gpu: bool = True

    @property
    def master_bytes(self) -> int:
        return dtype_bytes(self.master_dtype)

    @property
    def compute_bytes(self) -> int:
        return dtype_bytes(self.compute_dtype)

    @property
    def tokens(self) -> int:
        """Sequence length of a padded sample: prompt + response."""
        return self.prompt_tokens + self.response_tokens

    @property
    def fsdp(self) -> bool:
        """FSDP2 wraps the policy: several ranks, mixed precision (compute != master) or offload."""
        return self.gpus > 1 or self.compute_dtype != self.master_dtype or self.offload_params

    def with_override(self, key: str, value: Any) -> PlanSettings:
        """A copy with one config key changed (keys in OVERRIDE_FIELDS)."""
        return replace(self, **{OVERRIDE_FIELDS[key]: value})

    @classmethod
    def from_config(
        cls, cfg: Any, *, gpus: int | None = None, gpu_mem_gib: float | None = None, on_gpu: bool = True
    ) -> PlanSettings:
        """From a resolved run config (DictConfig). gpus: default trainer.num_workers; gpu_mem_gib: default
        80. Keys another part of the project may not define yet are read with their schema defaults."""
        from omegaconf import OmegaConf

        def get(key: str, default: Any) -> Any:
            value = OmegaConf.select(cfg, key, default=default)
            return default if value is None else value

        world = int(gpus if gpus is not None else get("trainer.num_workers", 1))
        if world < 1:
            raise UserError(f"--gpus {world}: the trainer needs at least one GPU")
        memory = float(gpu_mem_gib if gpu_mem_gib is not None else DEFAULT_GPU_MEM_GIB)
        if memory <= 0:
            raise UserError(f"--gpu-mem-gib {memory:g}: must be > 0")
        temperature = float(get("rollout.temperature", 1.0))
        return cls(
            gpus=world,
            gpu_mem_gib=memory,
            master_dtype=str(get("model.master_dtype", "float32")),
            compute_dtype=str(get("model.dtype", "float32")),
            lora_rank=int(get("model.lora_rank", 0)),
            gradient_checkpointing=bool(get("model.gradient_checkpointing", False)),
            offload_params=bool(get("trainer.fsdp.offload_params", False)),
            offload_optimizer=bool(get("trainer.fsdp.offload_optimizer", False)),
            offload_reference=bool(get("trainer.fsdp.offload_reference", False)),
            reshard_after_forward=bool(get("trainer.fsdp.reshard_after_forward", True)),
            use_reference=bool(get("trainer.use_kl_loss", True)) and float(get("trainer.kl_coef", 0.0)) > 0,
            entropy=float(get("trainer.entropy_coeff", 0.0)) > 0,
            scaled_logits=temperature not in (0.0, 1.0),
            micro_batch_size=int(get("trainer.micro_batch_size", 8)),
            prompt_tokens=int(get("rollout.max_prompt_tokens", 4096)),
            response_tokens=int(get("rollout.max_response_tokens", 512)),
            engine=str(get("rollout.engine", "hf")),
            engine_batch_size=int(get("rollout.batch_size", 64)),
            gpu_memory_utilization=float(get("rollout.gpu_memory_utilization", 0.5)),
            on_gpu=on_gpu,
        )
