"""What a memory plan depends on, read from a run config (`PlanSettings.from_config`).

The plan's GPU count is the number of GPUs the trainer shards over: one trainer rank per GPU, so
`gpus` is FSDP2's world size (`trainer.num_workers` by default). The rollout engine (one actor) shares the
first of those GPUs with rank 0; with `rollout.share_policy` resolved to sharing there is no engine actor:
rank 0 samples with its own module (`shares_policy`, the rule of hgpo_cli/train/fast_paths.py, here
without torch). The PPO critic (`algorithm.name=ppo`) is one more actor, placed by `critic_gpu`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.plan.shapes import ModelShape

# algorithm.name values that train a value model (hgpo_cli/train/gae.py's CRITIC_ALGORITHMS; the plan
# imports no numpy or torch)
CRITIC_ALGORITHMS = ("ppo",)

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
    "critic.num_gpus": "critic_num_gpus",
    "critic.micro_batch_size": "critic_micro_batch_size",
}

SHARE_POLICY_VALUES = ("auto", "true", "false")


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
    share_policy: str = "auto"  # rollout.share_policy: auto | true | false
    critic: bool = False  # algorithm.name=ppo: a value model trained beside the policy
    critic_micro_batch_size: int | None = None  # critic.micro_batch_size; None: micro_batch_size
    critic_num_gpus: float = 0.5  # critic.num_gpus: the share of a GPU its actor asks Ray for
    trainer_gpu_share: float = 0.5  # trainer.gpus_per_worker
    engine_gpu_share: float = 0.5  # rollout.num_gpus
    autocast_bf16: bool = False  # trainer.autocast_bf16 (the critic autocasts to bf16 with it)
    critic_shape: ModelShape | None = None  # critic.model_path's shape; None: the policy's

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

    def share_blockers(self) -> list[str]:
        """Why rank 0 cannot sample with its own module (empty: it can): hgpo_cli/train/fast_paths.py's
        share_policy_blockers, read off these settings (the plan's GPU count is trainer.num_workers)."""
        blockers = []
        if self.engine != "hf":
            blockers.append(f"rollout.engine={self.engine} (only the HF engine runs in the worker)")
        if self.gpus != 1:
            blockers.append(f"trainer.num_workers={self.gpus} (the module is sharded over ranks)")
        if self.lora_rank > 0:
            blockers.append("model.lora_rank > 0 (the engine needs the merged weights)")
        if self.master_dtype != self.compute_dtype:
            blockers.append(f"model.master_dtype={self.master_dtype} differs from model.dtype={self.compute_dtype}")
        return blockers

    @property
    def shares_policy(self) -> bool:
        """rollout.share_policy resolved: the HF engine runs over rank 0's own module (no engine actor, no
        second copy of the weights). `true` with a blocker is refused by from_config (as by the trainer)."""
        return self.share_policy != "false" and not self.share_blockers()

    @property
    def critic_micro(self) -> int:
        """Samples per critic forward pass (critic.micro_batch_size, else trainer.micro_batch_size)."""
        return self.critic_micro_batch_size or self.micro_batch_size

    @property
    def critic_compute_dtype(self) -> str:
        """The dtype the critic computes in: bf16 autocast over its master weights when model.dtype=bfloat16
        on a GPU or trainer.autocast_bf16 (hgpo_cli/train/critic_worker.py), else its master dtype."""
        bf16 = self.autocast_bf16 or (self.compute_dtype == "bfloat16" and self.on_gpu)
        return "bfloat16" if bf16 else self.master_dtype

    @property
    def critic_gpu(self) -> str:
        """Where the critic's actor runs: "" (no critic), "gpu0" or "own" (a GPU of its own).

        The trainer starts the ranks (one placement-group bundle of trainer.gpus_per_worker each, one rank
        per GPU in this plan), then the critic (critic.num_gpus), then the engine. Ray gives a request of a
        whole GPU or more whole GPUs, and a fraction the GPU with the least room that still holds it: with
        every trainer GPU equally full, the first one, GPU 0 beside rank 0."""
        if not self.critic:
            return ""
        if self.critic_num_gpus >= 1 or self.trainer_gpu_share + self.critic_num_gpus > 1 + 1e-9:
            return "own"
        return "gpu0"

    @property
    def engine_gpu(self) -> int | None:
        """The GPU of the engine actor: None when rank 0 samples with its own module; 1 when the critic took
        GPU 0's room before the engine started and GPU 1 beside rank 1 holds its share (Ray's best fit then
        picks it); else 0 (also when its share fits beside no rank: the plan keeps it on GPU 0)."""
        if self.shares_policy:
            return None
        crowded = self.trainer_gpu_share + self.critic_num_gpus + self.engine_gpu_share > 1 + 1e-9
        beside_rank = self.trainer_gpu_share + self.engine_gpu_share <= 1 + 1e-9
        if self.critic_gpu == "gpu0" and crowded and beside_rank and self.gpus > 1:
            return 1
        return 0

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
        share = str(get("rollout.share_policy", "false")).strip().lower()  # YAML booleans: True / False
        if share not in SHARE_POLICY_VALUES:
            raise UserError(f"rollout.share_policy={share!r} is not allowed (must be one of auto, true, false)")
        critic_micro = get("critic.micro_batch_size", None)
        settings = cls(
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
            share_policy=share,
            critic=str(get("algorithm.name", "")) in CRITIC_ALGORITHMS,
            critic_micro_batch_size=int(critic_micro) if critic_micro is not None else None,
            critic_num_gpus=float(get("critic.num_gpus", 0.5)),
            trainer_gpu_share=float(get("trainer.gpus_per_worker", 0.5)),
            engine_gpu_share=float(get("rollout.num_gpus", 0.5)),
            autocast_bf16=bool(get("trainer.autocast_bf16", False)),
        )
        blockers = settings.share_blockers()
        if share == "true" and blockers:
            raise UserError(f"rollout.share_policy=true is not possible here: {'; '.join(blockers)}")
        return settings
