"""The trainer worker: policy, frozen reference, AdamW, and the PPO update. One per data-parallel rank.

Run as a Ray actor (`make_policy_workers`). With several workers, each takes its share of every
mini-batch and gradients are summed over ranks with torch.distributed (gloo on CPU, NCCL on GPU);
the mini-batches and per-micro-batch loss weights come from `hgpo_cli.train.minibatch.plan_update`
(trainer.loss_scale=global: the result equals one big batch; micro: verl's per-micro-batch mean).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hgpo_cli.dedup import row_key, unique_rows
from hgpo_cli.distributed import set_torch_threads
from hgpo_cli.models.loading import attention_implementation
from hgpo_cli.train.batch import TrainSample, chunks, collate, response_logits, response_targets
from hgpo_cli.train.dist_checkpoint import export_hf, has_sharded, load_rng, load_sharded, save_rng, save_sharded
from hgpo_cli.train.fast_paths import length_order
from hgpo_cli.train.loss import entropy_from_logits, policy_objective, token_log_probs
from hgpo_cli.train.minibatch import plan_update
from hgpo_cli.train.precision import precision_of
from hgpo_cli.train.sharding import (
    ensure_process_group,
    freeze,
    full_value,
    lockstep_micro_batches,
    move_optimizer_state,
    needs_fsdp,
    shard_model,
)
from hgpo_cli.train.shared_prompts import (
    SUPPORTED_ATTENTION,
    pack_by_prompt,
    packed_response_logits,
    prompt_micro_batches,
)
from hgpo_cli.train.weight_sync import buckets, full_state_dict, full_state_items


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


def report_progress(sink: Any, rank: int, done: int, total: int) -> None:
    """Tell `sink` (anything with `put_nowait`, e.g. a `ray.util.queue.Queue` the driver drains) that rank 0
    has started pass `done` of `total` micro-batch passes; other ranks and a None sink say nothing. Progress
    is best effort: a full or closed sink never stops the work."""
    if sink is None or rank != 0:
        return
    with contextlib.suppress(Exception):  # a progress line is not worth failing an update for
        sink.put_nowait((done, total))


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
        # master weights (and so AdamW state) in model.master_dtype; compute, reference, engine in model.dtype
        self.precision = precision_of(model_cfg, trainer, warn=rank == 0)
        dtypes = self.precision.names()
        fsdp = trainer.get("fsdp") or {}
        # FSDP2 with several ranks (it reduces the gradients) or for mixed precision; else a plain module
        self.sharded = needs_fsdp(world_size, self.precision.mixed)
        if self.sharded:
            ensure_process_group(rank, world_size, dist_url, self.device)
        # hgpo_cli/models/trim.py: the same logits, faster
        trim = {
            "trim_last_mlp": bool(model_cfg.get("trim_last_mlp", False)),
            "trim_last_attention": bool(model_cfg.get("trim_last_attention", False)),
        }
        self.model = load_causal_lm(
            model_path,
            dtype=dtypes["master"],
            trust_remote_code=model_cfg["trust_remote_code"],
            gradient_checkpointing=model_cfg["gradient_checkpointing"],
            lora_rank=model_cfg["lora_rank"],
            lora_alpha=model_cfg["lora_alpha"],
            **trim,
        )
        self.model = self._place(
            self.model,
            compute_dtype=self.precision.compute,
            offload=bool(fsdp.get("offload_params", False)),
            sum_gradients=True,
        )
        self.model.train()
        self.lora = model_cfg["lora_rank"] > 0
        # with offload_params the parameters, their gradients and so the AdamW state and step already live on
        # the host (CPUOffloadPolicy): moving the state to the device would put it beside host parameters
        self.offload_optimizer = (
            bool(fsdp.get("offload_optimizer", False))
            and not bool(fsdp.get("offload_params", False))
            and self.device.type != "cpu"
        )
        self.reference = None
        if trainer["use_kl_loss"] and trainer["kl_coef"] > 0:
            reference = freeze(
                load_causal_lm(
                    model_path,
                    dtype=dtypes["compute"],
                    trust_remote_code=model_cfg["trust_remote_code"],
                    **trim,
                )
            )
            self.reference = self._place(reference, compute_dtype=None, offload=bool(fsdp.get("offload_reference")))
        # trainer.share_prompts needs an attention that takes a 4D mask
        self.attention = attention_implementation(self.model)
        self.share_prompts = bool(trainer.get("share_prompts", False)) and self.attention in SUPPORTED_ATTENTION
        self.tokenizer = load_tokenizer(model_path)
        self.pad_id = self.tokenizer.pad_token_id
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=trainer["lr"], weight_decay=trainer["weight_decay"])
        self._sync: Any = None

    def _place(
        self, model: torch.nn.Module, *, compute_dtype: torch.dtype | None, offload: bool, sum_gradients: bool = False
    ) -> torch.nn.Module:
        """Shard `model` over the trainer ranks (FSDP2) when this worker shards, else move it to the device."""
        if not self.sharded:
            return model.to(self.device)
        if not offload:
            model = model.to(self.device)
        fsdp = self.trainer.get("fsdp") or {}
        return shard_model(
            model,
            compute_dtype=compute_dtype,
            offload_params=offload,
            reshard_after_forward=bool(fsdp.get("reshard_after_forward", True)),
            sum_gradients=sum_gradients,
            device=self.device,
        )

    def _autocast(self) -> Any:
        """bf16 autocast when configured (fp32 master weights and optimizer state stay as they are)."""
        enabled = bool(self.trainer.get("autocast_bf16", False))
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # ---- log-probs -----------------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(
        self, samples: list[TrainSample], with_old: bool = True, progress: Any = None
    ) -> list[dict[str, list[float] | None]]:
        """Old (current policy) and reference log-probs of each sample's response tokens; `with_old=False`:
        the reference's only ("old" None: the update takes them from its own forward passes).

        With several ranks each computes those of its share, samples[rank::world_size] (every rank must be
        called with the same list; `interleave_shares` puts the answers back in order). `progress`: see
        `report_progress`."""
        self.model.eval()
        out: list[dict[str, list[float] | None]] = []
        # trainer.dedup_samples: one pass per distinct (prompt, response) row of each share, answers copied
        # to every sample with that row
        share_of = [samples[r :: self.world_size] for r in range(self.world_size)]
        rows_of = [self._distinct_rows(share) for share in share_of]
        distinct = [[share_of[r][i] for i in rows_of[r][0]] for r in range(self.world_size)]
        # trainer.sort_by_length: each share in order of length, so a micro-batch pads little (each sample's
        # log-probs do not depend on the others in its micro-batch); the answers go back to the share's order
        micro_of = [self._log_prob_micro_batches(distinct[r]) for r in range(self.world_size)]
        orders = [[i for micro in micro_of[r] for i in micro] for r in range(self.world_size)]
        shares = [[[distinct[r][i] for i in micro] for micro in micro_of[r]] for r in range(self.world_size)]
        passes = list(lockstep_micro_batches(shares, self.rank))
        for done, (micro, real) in enumerate(passes, start=1):
            old, ref, width = self._pass_log_probs(micro, with_old)
            report_progress(progress, self.rank, done, len(passes))
            for i, sample in enumerate(micro if real else []):
                n = len(sample.response_ids)
                out.append(
                    {
                        "old": (old[i, width - n :].tolist() if n else []) if old is not None else None,
                        "ref": (ref[i, width - n :].tolist() if n else []) if ref is not None else None,
                    }
                )
        self.model.train()
        by_row: list[dict[str, list[float] | None]] = [{}] * len(out)
        for position, answer in zip(orders[self.rank], out, strict=True):
            by_row[position] = answer
        return [{k: None if v is None else list(v) for k, v in by_row[row].items()} for row in rows_of[self.rank][1]]

    def _log_prob_micro_batches(self, share: list[TrainSample]) -> list[list[int]]:
        """Positions of `share` in the micro-batches of a log-prob pass: `micro_batch_size` samples each, in
        order of length under trainer.sort_by_length; under trainer.share_prompts `micro_batch_size`
        distinct prompts each (one packed row per prompt)."""
        size, sort = self.trainer["micro_batch_size"], bool(self.trainer.get("sort_by_length", False))
        if self.share_prompts:
            return prompt_micro_batches(share, size, sort)
        return chunks(length_order(share, sort), size)

    def _pass_log_probs(
        self, micro: list[TrainSample], with_old: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
        """(old (B, R) or None, reference (B, R) or None, R) log-probs of one micro-batch on the host, from
        one row per sample or, under trainer.share_prompts, one packed row per prompt."""
        models = [self.model if with_old else None, self.reference]
        if self.share_prompts:
            packed = pack_by_prompt(micro, self.pad_id).to(self.device)
            targets, width = packed.targets, packed.response_width

            def logits_of(model: torch.nn.Module) -> torch.Tensor:
                return packed_response_logits(model, packed, self.temperature, self.attention)
        else:
            batch = self._to_device(collate(micro, self.pad_id))
            targets, width = response_targets(batch), batch.response_width

            def logits_of(model: torch.nn.Module) -> torch.Tensor:
                return response_logits(model, batch, self.temperature)

        with self._autocast():
            answers = [None if m is None else token_log_probs(logits_of(m), targets).cpu() for m in models]
        return answers[0], answers[1], width

    def _distinct_rows(self, share: list[TrainSample]) -> tuple[list[int], list[int]]:
        """`unique_rows` of the share's (prompt, response) rows under trainer.dedup_samples, else identity."""
        if not self.trainer.get("dedup_samples", False):
            return list(range(len(share))), list(range(len(share)))
        return unique_rows([row_key(s) for s in share])

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

    def update(self, samples: list[TrainSample], seed: int, progress: Any = None) -> dict[str, float]:
        """PPO epochs over the mini-batches of `plan_update` (order, padding, rank split and micro-batch
        weights as trainer.shuffle / pad_batch / loss_scale say); returns metrics averaged over optimizer
        steps (each step's statistics are weight-averaged over its micro-batches). `progress`: see
        `report_progress` (one count per micro-batch pass)."""
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
            sort_by_length=bool(cfg.get("sort_by_length", False)),
            row_keys=[row_key(s) for s in samples] if cfg.get("dedup_samples", False) else None,
            prompt_keys=[tuple(s.prompt_ids) for s in samples] if self.share_prompts else None,
        )
        if len(plan.steps) > 1 and any(s.old_log_probs is None for s in samples):
            raise RuntimeError("old log-probs missing for an update of several optimizer steps")
        sums: dict[str, float] = {}
        steps = 0
        passes, total_passes = 0, sum(len(self._lockstep(step)) for step in plan.steps)
        for step in plan.steps:
            self.optimizer.zero_grad(set_to_none=False)
            stats_acc: dict[str, float] = {"weight": 0.0}
            for micro_batch, real in self._lockstep(step):
                passes += 1
                report_progress(progress, self.rank, passes, total_passes)
                weight = micro_batch.weight if real else 0.0
                if weight == 0 and not self.sharded:
                    continue  # under FSDP every rank runs as many passes as the others, weight 0 or not
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
            grad_norm = float(full_value(torch.nn.utils.clip_grad_norm_(self.params, cfg["grad_clip"])))
            if np.isfinite(grad_norm):
                self._optimizer_step()
            stats_acc["grad_norm"] = grad_norm
            stats_acc["step_weight"] = total_weight
            for key, value in stats_acc.items():
                sums[key] = sums.get(key, 0.0) + value
            steps += 1
        out = {f"actor/{k}": v / max(1, steps) for k, v in sums.items()}
        out["actor/padding_copies"] = float(len(plan.copies))
        return out

    def _lockstep(self, step: list[list[Any]]) -> list[tuple[Any, bool]]:
        """This rank's micro-batches of one optimizer step as (micro-batch, real); under FSDP padded with
        weight-0 passes to the count of the busiest rank."""
        if self.sharded:
            return lockstep_micro_batches(step, self.rank)
        return [(m, True) for m in step[self.rank]]

    def _optimizer_step(self) -> None:
        """AdamW step; with trainer.fsdp.offload_optimizer the state visits the device only for the step."""
        if self.offload_optimizer:
            move_optimizer_state(self.optimizer, self.device)
        self.optimizer.step()
        if self.offload_optimizer:
            move_optimizer_state(self.optimizer, "cpu")

    def _all_reduce(self, stats: dict[str, float]) -> None:
        """Sum the weighted stats over ranks (FSDP2 itself reduces the gradients); no-op with one worker."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        keys = sorted(stats)
        values = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        for key, value in zip(keys, values.tolist(), strict=True):
            stats[key] = value

    def _objective(self, micro: list[TrainSample], *, with_entropy: bool) -> tuple[torch.Tensor, dict[str, Any]]:
        """The configured policy objective (PPO + KL - entropy) of one micro-batch, with its statistics."""
        cfg = self.trainer
        batch = self._to_device(collate(micro, self.pad_id))
        if self.share_prompts:  # one packed row per distinct prompt, each sample's logits gathered from it
            packed = pack_by_prompt(micro, self.pad_id).to(self.device)
            with self._autocast():
                logits = packed_response_logits(self.model, packed, self.temperature, self.attention)
            log_probs = token_log_probs(logits, packed.targets)
            entropy = entropy_from_logits(logits) if with_entropy else None
        else:
            log_probs, entropy = self._row_log_probs(micro, batch, with_entropy)
        # no old log-probs: a one-step update, whose forward runs on the weights they would come from
        old = batch.old_log_probs if batch.old_log_probs is not None else log_probs.detach()
        return policy_objective(
            log_probs,
            old,
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

    def _row_log_probs(
        self, micro: list[TrainSample], batch: Any, with_entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, R) log-probs and entropies of the micro-batch, one forward row per sample, or per distinct
        row under trainer.dedup_samples (each sample takes its row's values; gradients summed per row)."""
        first, row_of = self._distinct_rows(micro)
        rows = batch if len(first) == len(micro) else self._to_device(collate([micro[i] for i in first], self.pad_id))
        with self._autocast():
            logits = response_logits(self.model, rows, self.temperature)
        log_probs = token_log_probs(logits, response_targets(rows))
        entropy = entropy_from_logits(logits) if with_entropy else None
        if rows is not batch:
            assert rows.response_width == batch.response_width
            index = torch.tensor(row_of, device=log_probs.device)
            log_probs = log_probs.index_select(0, index)
            entropy = entropy.index_select(0, index) if entropy is not None else None
        return log_probs, entropy

    def loss_on(self, samples: list[TrainSample]) -> float:
        """The policy objective (without the entropy bonus) on a fixed batch, no update: tests, diagnostics."""
        with torch.no_grad():
            return sum(
                float(self._objective(micro, with_entropy=False)[0]) * self._micro_weight(micro, samples)
                for micro in chunks(samples, self.trainer["micro_batch_size"])
            )

    # ---- weights and checkpoints ---------------------------------------------------------------------
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Full-model weights on CPU in the master dtype, under the base model's names (LoRA merged in).
        A collective under FSDP (every rank must call it); the engine gets them bucket by bucket instead."""
        return full_state_dict(self.model, lora=self.lora)

    def parameter_vector(self) -> torch.Tensor:
        """All trainable parameters flattened, gathered from the shards (tests comparing runs; a collective)."""
        return torch.cat([full_value(p.detach()).flatten().cpu().float() for p in self.params])

    def start_weight_sync(self, bucket_mb: int | None = None) -> int:
        """Begin handing the full weights, in the compute dtype, to the rollout engine: every rank gathers
        them one bucket of at most `bucket_mb` MiB (default trainer.fsdp.sync_bucket_mb) at a time."""
        fsdp = self.trainer.get("fsdp") or {}
        size = int((bucket_mb or fsdp.get("sync_bucket_mb", 256)) * 2**20)
        self._sync = buckets(full_state_items(self.model, dtype=self.precision.compute, lora=self.lora), size)
        return self.rank

    def next_weight_bucket(self) -> dict[str, torch.Tensor] | int:
        """Rank 0: the next bucket ({} when all were sent); other ranks: how many tensors they gathered
        and dropped (0 at the end). Every rank must be called once per bucket, in step."""
        bucket = next(self._sync, {}) if self._sync is not None else {}
        if not bucket:
            self._sync = None
        return bucket if self.rank == 0 else len(bucket)

    def shared_module(self) -> torch.nn.Module | None:
        """The policy module itself when an engine in this process could generate with it directly (one
        unsharded rank, compute dtype = master dtype, no LoRA); None otherwise. The seam for an HF engine
        that shares the trainer's module instead of receiving a copy."""
        if self.sharded or self.lora or self.precision.mixed:
            return None
        return self.model

    def dropout_free(self) -> bool:
        """True when the policy's forward is the same in train and eval mode (see train/fast_paths.py)."""
        from hgpo_cli.train.fast_paths import active_dropout

        return not active_dropout(self.model)

    def start_engine(self, batch_size: int, dedup_prefill: bool = False, prefill_chunk: int = 0) -> bool:
        """Host an HF engine over the policy module itself (rollout.share_policy): `generate` then samples
        with the current weights and no weight sync is needed."""
        from hgpo_cli.engines.shared import SharedPolicyEngine

        module = self.shared_module()
        if module is None:
            raise RuntimeError("this worker's policy is sharded, LoRA or mixed precision: it cannot be shared")
        self.engine = SharedPolicyEngine(
            module,
            self.tokenizer,
            batch_size=batch_size,
            device=str(self.device),
            dedup_prefill=dedup_prefill,
            prefill_chunk=prefill_chunk,
        )
        return True

    def generate(self, prompts: list[list[int]], settings: Any) -> list[Any]:
        """Sample with the policy module (after `start_engine`), as a rollout actor's `generate`."""
        return self.engine.generate(prompts, settings)

    def _export_config(self) -> tuple[Any, Any]:
        base = self.model.get_base_model() if self.lora else self.model
        return base.config, getattr(base, "generation_config", None)

    def save(self, directory: str) -> None:
        """Every rank writes its shards (sharded/, for resume) and RNG state; rank 0 writes policy/ (an HF
        folder in trainer.save_dtype, loadable by from_pretrained) from weights gathered bucket by bucket."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        save_sharded(self.model, self.optimizer, path, lora=self.lora)
        config, generation = self._export_config()
        export_hf(
            full_state_items(self.model, dtype=self.precision.save, lora=self.lora),
            config,
            path / "policy",
            write=self.rank == 0,
            dtype=self.precision.save,
            tokenizer=self.tokenizer,
            generation_config=generation,
        )
        save_rng(path, self.rank)
        if self.rank == 0:
            info = {"world_size": self.world_size, "lora": self.lora, **self.precision.names()}
            (path / "worker.json").write_text(json.dumps(info))

    def load(self, directory: str) -> None:
        """Restore policy weights, optimizer and RNG states from a checkpoint folder (its sharded/ state;
        older folders without one: policy/ and optimizer.pt, unsharded workers only)."""
        path = Path(directory)
        if has_sharded(path):
            load_sharded(self.model, self.optimizer, path, lora=self.lora)
        else:
            self._load_unsharded(path)
        load_rng(path, self.rank)

    def _load_unsharded(self, path: Path) -> None:
        """Weights from policy/ (an HF folder), and AdamW state from optimizer.pt when there is one (else
        Adam restarts): checkpoints written before the sharded state, or stripped of it."""
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        if self.lora:
            from peft import set_peft_model_state_dict

            adapter = path / "adapter" / "adapter_model.safetensors"
            if not adapter.is_file():
                raise RuntimeError(f"checkpoint {path} has neither sharded/ state nor adapter/ weights to resume from")
            set_peft_model_state_dict(self.model, load_file(str(adapter)))
        else:
            state = {}
            for shard in sorted((path / "policy").glob("*.safetensors")):
                state.update(load_file(str(shard)))
            if "lm_head.weight" not in state and "model.embed_tokens.weight" in state:
                state["lm_head.weight"] = state["model.embed_tokens.weight"]  # a tied head is saved once
            expected = set(self.model.state_dict())
            if set(state) - expected or expected - set(state):
                raise RuntimeError(f"checkpoint {path} does not match the model")
            master = self.precision.master
            state = {k: v.to(master) for k, v in state.items()}
            set_model_state_dict(self.model, state, options=StateDictOptions(full_state_dict=True))
        if (path / "optimizer.pt").is_file():
            self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))

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
    """Start `num_workers` PolicyWorker Ray actors (rank 0 first) in one placement group (packed on one node
    when it fits), joined in one process group whose rendezvous is on rank 0's node. `release_actors`
    (hgpo_cli.train.placement) stops them and frees the group."""
    from hgpo_cli.cluster import wait_for_actors, waiting_notice
    from hgpo_cli.ray_errors import defer_init_errors, get_with_notice
    from hgpo_cli.train.placement import start_ranked_actors

    def kwargs(rank: int) -> dict[str, Any]:
        return {
            "model_path": model_path,
            "model_cfg": model_cfg,
            "trainer": trainer,
            "rank": rank,
            "world_size": num_workers,
            "torch_threads": torch_threads,
            "temperature": temperature,
        }

    notice = waiting_notice("the policy workers")
    workers, _ = start_ranked_actors(
        defer_init_errors(PolicyWorker),
        kwargs,
        num_workers=num_workers,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        wait=lambda refs: get_with_notice(refs, notice),
    )
    wait_for_actors(workers, "the policy workers")
    return workers
