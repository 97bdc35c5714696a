"""The critic of `algorithm.name=ppo`: a value model, its AdamW, the clipped value loss. One Ray actor.

As verl builds it (`verl/workers/fsdp_workers.py: CriticWorker`, `verl/workers/critic/dp_critic.py`):
- the value model is `AutoModelForTokenClassification` with `num_labels=1` and `classifier_dropout=0`,
  loaded from the policy's base model (verl-agent's scripts: `critic.model.path` = the actor's path): the
  transformer starts from the pretrained weights, the `score` head (hidden -> 1) is freshly initialised;
- the value of response token t is the head's output at the position before t (`values[:, -R-1:-1]`);
- AdamW (betas 0.9, 0.999; weight decay 0.01; lr 1e-5 in verl-agent's PPO scripts, constant schedule);
- loss = token-mean of max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2), c = `cliprange_value`
  (0.5); `vf_clipfrac` = share of tokens where the clipped term is the larger; grad-norm clip 1.0, a
  non-finite norm skips the step; mini-batches of `ppo_mini_batch_size` step samples in batch order
  (no shuffling), `ppo_epochs` passes, as the actor;
- its checkpoint is the folder `critic/` of the iteration's checkpoint (HF weights and optimizer.pt).

One worker (no data parallelism); fp32 master weights, bf16 autocast when `model.dtype=bfloat16` on CUDA or
`trainer.autocast_bf16`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hgpo_cli.distributed import set_torch_threads
from hgpo_cli.train.batch import Collated, TrainSample, chunks, collate

CRITIC_DIR = "critic"


def value_loss(
    vpreds: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's compute_value_loss with token-mean aggregation. All inputs (B, R); -> (loss, clipfrac) scalars.

    loss = sum(mask * max((V - R)^2, (clip(V, V_old +/- c) - R)^2)) / (sum(mask) + 1e-8).
    """
    clipped = torch.max(torch.min(vpreds, old_values + cliprange_value), old_values - cliprange_value)
    loss_1 = (vpreds - returns) ** 2
    loss_2 = (clipped - returns) ** 2
    denom = mask.sum() + 1e-8
    loss = (torch.max(loss_1, loss_2) * mask).sum() / denom
    clipfrac = ((loss_2 > loss_1).float() * mask).sum() / denom
    return loss, clipfrac


def load_value_model(path: str, *, dtype: str = "float32", trust_remote_code: bool = False) -> Any:
    """AutoModelForTokenClassification (one label, no dropout) from a causal LM's folder or hub id."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    from hgpo_cli.errors import UserError

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        config.num_labels = 1
        config.classifier_dropout = 0.0
        return AutoModelForTokenClassification.from_pretrained(
            path, config=config, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as err:
        raise UserError(f"could not build a value model from '{path}': {str(err).splitlines()[0]}") from None


def _right_aligned(rows: list[list[float]], width: int) -> torch.Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, row in enumerate(rows):
        if len(row):
            out[i, width - len(row) :] = torch.as_tensor(row, dtype=torch.float32)
    return out


class CriticWorker:
    """Owns the value model. critic, trainer, model_cfg: the config sections as dicts."""

    def __init__(
        self,
        model_path: str,
        tokenizer_path: str,
        critic: dict[str, Any],
        trainer: dict[str, Any],
        model_cfg: dict[str, Any],
        torch_threads: int = 0,
    ) -> None:
        from hgpo_cli.models.loading import load_tokenizer

        set_torch_threads(torch_threads)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.critic, self.trainer = critic, trainer
        self.device = torch.device(trainer["device"])
        torch.manual_seed(int(trainer["seed"]))  # the fresh score head
        master = model_cfg.get("master_dtype", "float32")
        self.model = load_value_model(model_path, dtype=master, trust_remote_code=model_cfg["trust_remote_code"])
        if model_cfg.get("gradient_checkpointing"):
            self.model.gradient_checkpointing_enable()
            self.model.config.use_cache = False
        self.model.to(self.device).train()
        self.bf16 = bool(trainer.get("autocast_bf16")) or (
            model_cfg.get("dtype") == "bfloat16" and self.device.type == "cuda"
        )
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.pad_id = self.tokenizer.pad_token_id
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=critic["lr"], weight_decay=critic["weight_decay"])
        self.micro_size = int(critic.get("micro_batch_size") or trainer["micro_batch_size"])

    # ---- values --------------------------------------------------------------------------------------
    def _forward(self, batch: Collated) -> torch.Tensor:
        """(B, Rmax) values: the head's output at the position before each response token."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(
                input_ids=batch.input_ids.to(self.device),
                attention_mask=batch.attention_mask.to(self.device),
                position_ids=batch.position_ids.to(self.device),
                use_cache=False,
            )
        width = batch.response_width
        return out.logits[:, -width - 1 : -1, 0].float()

    @torch.no_grad()
    def values(self, samples: list[TrainSample]) -> list[list[float]]:
        """Each sample's values, (R_i,) per sample, in order."""
        self.model.eval()
        out: list[list[float]] = []
        for micro in chunks(samples, self.micro_size):
            batch = collate(micro, self.pad_id)
            values = self._forward(batch).cpu()
            width = batch.response_width
            for i, sample in enumerate(micro):
                n = len(sample.response_ids)
                out.append(values[i, width - n :].tolist() if n else [])
        self.model.train()
        return out

    # ---- the update ----------------------------------------------------------------------------------
    def _micro_loss(
        self, micro: list[TrainSample], old_values: list[list[float]], returns: list[list[float]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = collate(micro, self.pad_id)
        width = batch.response_width
        vpreds = self._forward(batch)
        mask = batch.response_mask.to(self.device)
        old = _right_aligned(old_values, width).to(self.device)
        ret = _right_aligned(returns, width).to(self.device)
        loss, clipfrac = value_loss(vpreds, old, ret, mask, float(self.critic["cliprange_value"]))
        vmean = (vpreds.detach() * mask).sum() / (mask.sum() + 1e-8)
        return loss, clipfrac, vmean, mask.sum()

    def _weight(self, micro_tokens: float, mini_tokens: float, mini_size: int) -> float:
        """A micro-batch's share of its mini-batch loss: verl's 1 / gradient-accumulation steps under
        trainer.loss_scale=micro, its share of the mini-batch's tokens otherwise (a true token-mean)."""
        if self.trainer.get("loss_scale", "global") == "micro":
            return 1.0 / max(1, int(self.trainer["ppo_mini_batch_size"]) // self.micro_size)
        return micro_tokens / max(1.0, mini_tokens)

    def update(
        self, samples: list[TrainSample], old_values: list[list[float]], returns: list[list[float]]
    ) -> dict[str, float]:
        """ppo_epochs passes over mini-batches in batch order; metrics averaged over optimizer steps.

        old_values, returns: (R_i,) per sample, the values of `values()` and the GAE returns.
        """
        if not len(samples) == len(old_values) == len(returns):
            raise ValueError("samples, old_values and returns must have one entry per sample")
        sums: dict[str, float] = {}
        steps = 0
        index = list(range(len(samples)))
        for _ in range(int(self.trainer["ppo_epochs"])):
            for mini in chunks(index, int(self.trainer["ppo_mini_batch_size"])):
                mini_tokens = float(sum(len(samples[i].response_ids) for i in mini))
                self.optimizer.zero_grad(set_to_none=False)
                acc = {"value_loss": 0.0, "vf_clipfrac": 0.0, "vpred_mean": 0.0}
                for micro in chunks(mini, self.micro_size):
                    tokens = float(sum(len(samples[i].response_ids) for i in micro))
                    if tokens == 0:
                        continue
                    loss, clipfrac, vmean, _ = self._micro_loss(
                        [samples[i] for i in micro], [old_values[i] for i in micro], [returns[i] for i in micro]
                    )
                    weight = self._weight(tokens, mini_tokens, len(mini))
                    (loss * weight).backward()
                    share = tokens / max(1.0, mini_tokens)  # metrics: token-weighted over the mini-batch
                    acc["value_loss"] += float(loss.detach()) * share
                    acc["vf_clipfrac"] += float(clipfrac) * share
                    acc["vpred_mean"] += float(vmean) * share
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, float(self.critic["grad_clip"])))
                if np.isfinite(grad_norm):
                    self.optimizer.step()
                else:
                    self.optimizer.zero_grad(set_to_none=False)
                acc["grad_norm"] = grad_norm
                for key, value in acc.items():
                    sums[key] = sums.get(key, 0.0) + value
                steps += 1
        out = {f"critic/{k}": v / max(1, steps) for k, v in sums.items()}
        out["critic/lr"] = float(self.critic["lr"])
        return out

    def loss_on(self, samples: list[TrainSample], old_values: list[list[float]], returns: list[list[float]]) -> float:
        """The value loss (token-mean over the batch) without an update: tests, diagnostics."""
        total, tokens = 0.0, 0.0
        with torch.no_grad():
            for micro in chunks(list(range(len(samples))), self.micro_size):
                loss, _, _, n = self._micro_loss(
                    [samples[i] for i in micro], [old_values[i] for i in micro], [returns[i] for i in micro]
                )
                total += float(loss) * float(n)
                tokens += float(n)
        return total / max(1.0, tokens)

    # ---- checkpoints ---------------------------------------------------------------------------------
    def save(self, directory: str) -> None:
        """Write DIRECTORY/critic/: the value model (HF format) and the AdamW state."""
        path = Path(directory) / CRITIC_DIR
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        torch.save(self.optimizer.state_dict(), path / "optimizer.pt")
        (path / "critic.json").write_text(json.dumps({"lr": self.critic["lr"]}))

    def load(self, directory: str) -> None:
        """Restore the value model and (when it was kept) the AdamW state from DIRECTORY/critic/."""
        from safetensors.torch import load_file

        from hgpo_cli.errors import UserError

        path = Path(directory) / CRITIC_DIR
        shards = sorted(path.glob("*.safetensors"))
        if not shards:
            raise UserError(f"checkpoint {directory} has no critic/ (was it trained with algorithm.name=ppo?)")
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(shard)))
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(f"checkpoint {directory}: critic/ does not match the value model")
        # a finished run's final checkpoint keeps the critic's weights without its AdamW state
        # (trainer.keep_final_optimizer=false): the moments then restart from zero, like the policy's
        if (path / "optimizer.pt").is_file():
            self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))

    def parameter_vector(self) -> torch.Tensor:
        """All trainable parameters flattened (tests)."""
        return torch.cat([p.detach().flatten().cpu().float() for p in self.params])

    def ping(self) -> bool:
        return True


def make_critic_worker(
    model_path: str,
    tokenizer_path: str,
    critic: dict[str, Any],
    trainer: dict[str, Any],
    model_cfg: dict[str, Any],
    *,
    num_cpus: float,
    num_gpus: float,
    torch_threads: int,
) -> Any:
    """Start the CriticWorker Ray actor and wait until its model is loaded."""
    import ray

    from hgpo_cli.ray_errors import defer_init_errors

    actor = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(defer_init_errors(CriticWorker)).remote(
        model_path, tokenizer_path, critic, trainer, model_cfg, torch_threads
    )
    ray.get(actor.ping.remote())
    return actor
