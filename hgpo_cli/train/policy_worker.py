"""The trainer worker: policy, frozen reference, AdamW, and the PPO update. One per data-parallel rank.

Run as a Ray actor (`make_policy_workers`). With several workers, each takes its share of every
mini-batch and gradients are summed over ranks with torch.distributed (gloo on CPU, NCCL on GPU);
the mini-batches and per-micro-batch loss weights come from `hgpo_cli.train.minibatch.plan_update`
(trainer.loss_scale=global: the result equals one big batch; micro: verl's per-micro-batch mean).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hgpo_cli.distributed import set_torch_threads
from hgpo_cli.train.batch import TrainSample, chunks, collate, response_logits, response_targets
from hgpo_cli.train.loss import entropy_from_logits, policy_objective, token_log_probs
from hgpo_cli.train.minibatch import plan_update


def trainer_settings(**overrides: Any) -> dict[str, Any]:
    """The `trainer` config section as the dict a PolicyWorker takes: schema defaults, then `overrides`."""
    from omegaconf import OmegaConf

    from hgpo_cli.config.schema import TrainerConfig

    settings = OmegaConf.to_container(OmegaConf.structured(TrainerConfig), resolve=True)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise KeyError(f"not trainer settings: {sorted(unknown)}")
    settings.update(overrides)
    return settings


def model_settings(**overrides: Any) -> dict[str, Any]:
    """The `model` config section as the dict a PolicyWorker takes: schema defaults, then `overrides`."""
    from omegaconf import OmegaConf

    from hgpo_cli.config.schema import ModelConfig

    settings = OmegaConf.to_container(OmegaConf.structured(ModelConfig), resolve=True)
    settings.update(overrides)
    return settings


class PolicyWorker:
    """Owns the trainable policy of one rank. `trainer` is the `trainer` section of the config as a dict."""

    def __init__(
        self,
        model_path: str,
        model_cfg: dict[str, Any],
        trainer: dict[str, Any],
        rank: int = 0,
        world_size: int = 1,
        dist_url: str | None = None,
        torch_threads: int = 0,
        temperature: float = 1.0,
    ) -> None:
        """temperature: the rollouts' sampling temperature; log-probs, ratios, KL and entropy are those of
        the logits divided by it (as verl does), so that the PPO ratio compares the sampling policy."""
        from hgpo_cli.models.loading import load_causal_lm, load_tokenizer

        set_torch_threads(torch_threads)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.rank, self.world_size, self.trainer = rank, world_size, trainer
        self.temperature = float(temperature)
        self.device = torch.device(trainer["device"])
        torch.manual_seed(trainer["seed"])
        load_kwargs = {
            "dtype": model_cfg["dtype"],
            "trust_remote_code": model_cfg["trust_remote_code"],
        }
        self.model = load_causal_lm(
            model_path,
            gradient_checkpointing=model_cfg["gradient_checkpointing"],
            lora_rank=model_cfg["lora_rank"],
            lora_alpha=model_cfg["lora_alpha"],
            **load_kwargs,
        ).to(self.device)
        self.model.train()
        self.lora = model_cfg["lora_rank"] > 0
        self.reference = None
        if trainer["use_kl_loss"] and trainer["kl_coef"] > 0:
            self.reference = load_causal_lm(model_path, **load_kwargs).to(self.device).eval()
            for param in self.reference.parameters():
                param.requires_grad_(False)
        self.tokenizer = load_tokenizer(model_path)
        self.pad_id = self.tokenizer.pad_token_id
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=trainer["lr"], weight_decay=trainer["weight_decay"])
        if world_size > 1:
            import torch.distributed as dist

            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, init_method=dist_url, rank=rank, world_size=world_size)

    def _autocast(self) -> Any:
        """bf16 autocast when configured (fp32 master weights and optimizer state stay as they are)."""
        enabled = bool(self.trainer.get("autocast_bf16", False))
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # ---- log-probs -----------------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(self, samples: list[TrainSample]) -> list[dict[str, list[float] | None]]:
        """Old (current policy) and reference log-probs of each sample's response tokens."""
        self.model.eval()
        out: list[dict[str, list[float] | None]] = []
        for micro in chunks(samples, self.trainer["micro_batch_size"]):
            batch = self._to_device(collate(micro, self.pad_id))
            targets = response_targets(batch)
            with self._autocast():
                old = token_log_probs(response_logits(self.model, batch, self.temperature), targets).cpu()
                ref = None
                if self.reference is not None:
                    ref = token_log_probs(response_logits(self.reference, batch, self.temperature), targets).cpu()
            for i, sample in enumerate(micro):
                n = len(sample.response_ids)
                width = batch.response_width
                out.append(
                    {
                        "old": old[i, width - n :].tolist() if n else [],
                        "ref": (ref[i, width - n :].tolist() if n else []) if ref is not None else None,
                    }
                )
        self.model.train()
        return out

    def _to_device(self, batch: Any) -> Any:
        for name in (
            "input_ids",
            "attention_mask",
            "position_ids",
            "response_mask",
            "advantages",
            "old_log_probs",
            "ref_log_probs",
        ):
            value = getattr(batch, name)
            if value is not None:
                setattr(batch, name, value.to(self.device))
        return batch

    # ---- the PPO update ------------------------------------------------------------------------------
    def _micro_weight(self, micro: list[TrainSample], mini: list[TrainSample]) -> float:
        """Share of the mini-batch's normaliser held by this micro-batch (tokens or sequences)."""
        if self.trainer["loss_agg_mode"] == "token-mean":
            return sum(len(s.response_ids) for s in micro) / max(1, sum(len(s.response_ids) for s in mini))
        return sum(1 for s in micro if s.response_ids) / max(1, sum(1 for s in mini if s.response_ids))

    def update(self, samples: list[TrainSample], seed: int) -> dict[str, float]:
        """PPO epochs over the mini-batches of `plan_update` (order, padding, rank split and micro-batch
        weights as trainer.shuffle / pad_batch / loss_scale say); returns metrics averaged over optimizer
        steps (each step's statistics are weight-averaged over its micro-batches)."""
        cfg = self.trainer
        plan = plan_update(
            [len(s.response_ids) for s in samples],
            [len(s.prompt_ids) + len(s.response_ids) for s in samples],
            mini_batch_size=cfg["ppo_mini_batch_size"],
            micro_batch_size=cfg["micro_batch_size"],
            world_size=self.world_size,
            epochs=cfg["ppo_epochs"],
            loss_scale=cfg["loss_scale"],
            agg_mode=cfg["loss_agg_mode"],
            shuffle=cfg["shuffle"],
            pad=cfg["pad_batch"],
            seed=seed,
        )
        sums: dict[str, float] = {}
        steps = 0
        for step in plan.steps:
            self.optimizer.zero_grad(set_to_none=False)
            stats_acc: dict[str, float] = {"weight": 0.0}
            for micro_batch in step[self.rank]:
                weight = micro_batch.weight
                if weight == 0:
                    continue
                micro = [samples[i] for i in micro_batch.indices]
                loss, stats = self._objective(micro, with_entropy=cfg["entropy_coeff"] > 0)
                (loss * weight).backward()
                for key, value in stats.items():
                    stats_acc[key] = stats_acc.get(key, 0.0) + float(value) * weight
                stats_acc["loss"] = stats_acc.get("loss", 0.0) + float(loss.detach()) * weight
                stats_acc["weight"] += weight
            self._all_reduce(stats_acc)
            total_weight = stats_acc.pop("weight")
            stats_acc = {k: v / total_weight for k, v in stats_acc.items()} if total_weight > 0 else stats_acc
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg["grad_clip"]))
            if np.isfinite(grad_norm):
                self.optimizer.step()
            stats_acc["grad_norm"] = grad_norm
            stats_acc["step_weight"] = total_weight
            for key, value in stats_acc.items():
                sums[key] = sums.get(key, 0.0) + value
            steps += 1
        out = {f"actor/{k}": v / max(1, steps) for k, v in sums.items()}
        out["actor/padding_copies"] = float(len(plan.copies))
        return out

    def _all_reduce(self, stats: dict[str, float]) -> None:
        """Sum gradients (and the weighted stats) over ranks; no-op with one worker."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for param in self.params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        keys = sorted(stats)
        values = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        for key, value in zip(keys, values.tolist(), strict=True):
            stats[key] = value

    def _objective(self, micro: list[TrainSample], *, with_entropy: bool) -> tuple[torch.Tensor, dict[str, Any]]:
        """The configured policy objective (PPO + KL - entropy) of one micro-batch, with its statistics."""
        cfg = self.trainer
        batch = self._to_device(collate(micro, self.pad_id))
        with self._autocast():
            logits = response_logits(self.model, batch, self.temperature)
        log_probs = token_log_probs(logits, response_targets(batch))
        entropy = entropy_from_logits(logits) if with_entropy else None
        return policy_objective(
            log_probs,
            batch.old_log_probs,
            batch.ref_log_probs,
            batch.advantages,
            batch.response_mask,
            entropy,
            clip_low=cfg["clip_ratio_low"],
            clip_high=cfg["clip_ratio_high"],
            clip_c=cfg["clip_ratio_c"],
            kl_coef=cfg["kl_coef"],
            kl_type=cfg["kl_type"],
            entropy_coeff=cfg["entropy_coeff"] if with_entropy else 0.0,
            use_kl_loss=self.reference is not None,
            agg_mode=cfg["loss_agg_mode"],
        )

    def loss_on(self, samples: list[TrainSample]) -> float:
        """The policy objective (without the entropy bonus) on a fixed batch, no update: tests, diagnostics."""
        with torch.no_grad():
            return sum(
                float(self._objective(micro, with_entropy=False)[0]) * self._micro_weight(micro, samples)
                for micro in chunks(samples, self.trainer["micro_batch_size"])
            )

    # ---- weights and checkpoints ---------------------------------------------------------------------
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Full-model weights on CPU under the base model's names (LoRA merged in)."""
        if not self.lora:
            return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self.model.merge_adapter()
        try:
            state = {}
            for key, value in self.model.get_base_model().state_dict().items():
                if "lora_" in key:
                    continue
                state[key.replace(".base_layer.", ".")] = value.detach().to("cpu", copy=True)
        finally:
            self.model.unmerge_adapter()
        return state

    def parameter_vector(self) -> torch.Tensor:
        """All trainable parameters flattened (for tests comparing runs)."""
        return torch.cat([p.detach().flatten().cpu().float() for p in self.params])

    def save(self, directory: str) -> None:
        """Rank 0 writes policy/ (HF format, loadable by from_pretrained), optimizer and RNG states."""
        if self.rank != 0:
            return
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if self.lora:
            self.model.save_pretrained(path / "adapter")
            self._merged_copy().save_pretrained(path / "policy")
        else:
            self.model.save_pretrained(path / "policy")
        self.tokenizer.save_pretrained(path / "policy")
        torch.save(self.optimizer.state_dict(), path / "optimizer.pt")
        torch.save(
            {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
            path / "rng.pt",
        )
        (path / "worker.json").write_text(json.dumps({"world_size": self.world_size, "lora": self.lora}))

    def _merged_copy(self) -> torch.nn.Module:
        """A plain (adapter-free) model holding the merged LoRA weights."""
        from transformers import AutoModelForCausalLM

        plain = AutoModelForCausalLM.from_config(self.model.get_base_model().config)
        plain.load_state_dict(self.policy_state_dict(), strict=False)
        return plain

    def load(self, directory: str) -> None:
        """Restore policy weights, optimizer and RNG states from a checkpoint folder."""
        from safetensors.torch import load_file

        path = Path(directory)
        if self.lora:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(str(path / "adapter" / "adapter_model.safetensors")))
        else:
            state = {}
            for shard in sorted((path / "policy").glob("*.safetensors")):
                state.update(load_file(str(shard)))
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if [k for k in missing if not k.endswith("lm_head.weight")] or unexpected:
                raise RuntimeError(f"checkpoint {directory} does not match the model")
            if hasattr(self.model, "tie_weights"):
                self.model.tie_weights()
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
        rng = torch.load(path / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])

    def ping(self) -> int:
        return self.rank


def make_policy_workers(
    model_path: str,
    model_cfg: dict[str, Any],
    trainer: dict[str, Any],
    *,
    num_workers: int,
    num_cpus: float,
    num_gpus: float,
    torch_threads: int,
    temperature: float = 1.0,
) -> list[Any]:
    """Start `num_workers` PolicyWorker Ray actors (rank 0 first) joined in one process group."""
    import ray

    dist_url = None
    if num_workers > 1:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        host = ray.util.get_node_ip_address()
        dist_url = f"tcp://{host}:{port}"
    actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(PolicyWorker)
    workers = [
        actor_cls.remote(model_path, model_cfg, trainer, rank, num_workers, dist_url, torch_threads, temperature)
        for rank in range(num_workers)
    ]
    ray.get([w.ping.remote() for w in workers])
    return workers
