"""When the trainer may take the shortcuts of one iteration on one machine (the same maths, fewer passes).

- ``rollout.share_policy`` (auto | true | false): the rank-0 policy worker samples with its own module
  (`hgpo_cli.engines.shared`) instead of a separate engine actor holding a copy that is synced after each
  update. Possible when the engine is HF, there is one trainer rank, no LoRA and no mixed precision (the
  module the optimizer updates is then exactly the one an engine would load: same weights, same dtype).
- ``trainer.fuse_old_log_probs`` (auto | true | false): when the whole update is one optimizer step (one
  PPO epoch, every sample in one mini-batch), every forward pass of the update runs on the weights the
  old log-probs would be computed with, so the old log-probs are the current ones, detached (as TRL
  does): ratios of exactly 1, and no separate pass. Needs the forward to be the same in train and eval
  mode (no active dropout), since the separate pass runs in eval mode and the update in train mode.
- ``trainer.old_log_probs_from_rollout`` (auto | true | false): with the shared policy, an update of
  several optimizer steps takes the old log-probs the engine recorded while sampling (each token's
  log-probability under softmax(logits / temperature), in eval mode, on the weights of the last update)
  instead of a separate pass: the same module, the same weights, the same distribution. Equal to the
  separate pass up to float rounding only (the cached one-token-at-a-time forward sums in another order
  than the full-sequence one), so the first step's ratios are 1 +- ~1e-6 instead of 1 +- ~1e-7.

Plain booleans, on by default: in `hgpo_cli.dedup`: ``trainer.dedup_samples`` (step samples
with identical prompt and response tokens share one forward row in the log-prob passes and the update)
and ``rollout.dedup_prefill`` (the HF engine prefills a prompt repeated within a generate call once, and the
distinct prompts ``rollout.prefill_chunk`` at a time, in order of length); ``trainer.share_prompts`` in
`hgpo_cli.train.shared_prompts` (step samples with the same prompt and other responses share one packed
row: the prompt once, each response masked to see the prompt and itself); and
``model.trim_last_mlp`` and ``model.trim_last_attention`` in `hgpo_cli.models.trim` (a forward that keeps
the logits of its last n positions runs the last decoder layer's MLP, or the whole last layer, there alone;
the positions before still give their keys and values).

All of them change how the numbers are computed, never which: `tests/test_fast_paths.py`,
`tests/test_shared_prompts.py` and the trim tests check rollouts, logits, gradients and updated weights
against the plain paths one by one, and `tests/test_train_e2e.py` a whole run with all of them
(`FAST_PATHS`) against one with none (`PLAIN_PATHS`).
"""

from __future__ import annotations

from typing import Any

import torch

from hgpo_cli.errors import UserError
from hgpo_cli.train.minibatch import plan_update

SWITCH_VALUES = ("auto", "true", "false")
# every path above as a dotted override, off and on (the defaults): `benchmarks/bench_iteration.py` times
# the two side by side, and tests/test_train_e2e.py trains with both and compares rollouts and weights
PLAIN_PATHS = (
    "rollout.share_policy=false",
    "trainer.fuse_old_log_probs=false",
    "trainer.old_log_probs_from_rollout=false",
    "trainer.sort_by_length=false",
    "trainer.dedup_samples=false",
    "trainer.share_prompts=false",
    "rollout.dedup_prefill=false",
    "model.trim_last_mlp=false",
    "model.trim_last_attention=false",
)
FAST_PATHS = (
    "rollout.share_policy=auto",
    "trainer.fuse_old_log_probs=auto",
    "trainer.old_log_probs_from_rollout=auto",
    "trainer.sort_by_length=true",
    "trainer.dedup_samples=true",
    "trainer.share_prompts=true",
    "rollout.dedup_prefill=true",
    "model.trim_last_mlp=true",
    "model.trim_last_attention=true",
)


def switch(value: Any, key: str) -> str:
    """'auto', 'true' or 'false' from a config value (YAML booleans arrive as True / 'True')."""
    text = str(value).strip().lower()
    if text not in SWITCH_VALUES:
        raise UserError(f"{key}={value!r} is not allowed (must be one of {', '.join(SWITCH_VALUES)})")
    return text


def share_policy_blockers(cfg: Any) -> list[str]:
    """Why the rollout cannot use the policy worker's module (empty: it can)."""
    blockers = []
    if cfg.rollout.engine != "hf":
        blockers.append(f"rollout.engine={cfg.rollout.engine} (only the HF engine runs in the worker)")
    if int(cfg.trainer.num_workers) != 1:
        blockers.append(f"trainer.num_workers={cfg.trainer.num_workers} (the module is sharded over ranks)")
    if int(cfg.model.lora_rank) > 0:
        blockers.append("model.lora_rank > 0 (the engine needs the merged weights)")
    master = cfg.model.get("master_dtype") or "float32"
    if str(master) != str(cfg.model.dtype):
        blockers.append(f"model.master_dtype={master} differs from model.dtype={cfg.model.dtype}")
    return blockers


def shares_policy(cfg: Any) -> bool:
    """Whether this run rolls out with the policy worker's own module (rollout.share_policy resolved)."""
    mode = switch(cfg.rollout.get("share_policy", "false"), "rollout.share_policy")
    if mode == "false":
        return False
    blockers = share_policy_blockers(cfg)
    if mode == "true" and blockers:
        raise UserError(f"rollout.share_policy=true is not possible here: {'; '.join(blockers)}")
    return not blockers


def rollout_old_log_probs(cfg: Any) -> bool:
    """Whether updates of several optimizer steps take the old log-probs recorded by the rollout
    (trainer.old_log_probs_from_rollout resolved; only with the shared policy: an engine holding a copy
    of the weights may run other kernels or another dtype)."""
    mode = switch(cfg.trainer.get("old_log_probs_from_rollout", "false"), "trainer.old_log_probs_from_rollout")
    if mode == "false":
        return False
    shared = shares_policy(cfg)
    if mode == "true" and not shared:
        raise UserError(
            "trainer.old_log_probs_from_rollout=true needs the shared policy (rollout.share_policy resolved to "
            f"true): {'; '.join(share_policy_blockers(cfg)) or 'rollout.share_policy=false'}"
        )
    return shared


def most_step_samples(cfg: Any) -> int:
    """The most step samples one iteration can have: tasks x group size x max steps."""
    return int(cfg.trainer.train_batch_size) * int(cfg.trainer.group_size) * int(cfg.env.max_steps)


def fuse_mode(cfg: Any) -> str:
    """trainer.fuse_old_log_probs resolved against the config: 'auto' (decided per iteration), 'true' or
    'false'. 'true' is refused when some iteration could need more than one optimizer step."""
    mode = switch(cfg.trainer.get("fuse_old_log_probs", "false"), "trainer.fuse_old_log_probs")
    if mode == "true":
        n = most_step_samples(cfg)
        if update_steps([1] * n, [1] * n, dict(cfg.trainer), int(cfg.trainer.num_workers)) > 1:
            raise UserError(
                "trainer.fuse_old_log_probs=true needs every update to be one optimizer step "
                f"(trainer.ppo_epochs=1 and up to {n} step samples in one mini-batch: "
                f"trainer.ppo_mini_batch_size >= {n})"
            )
    return mode


def update_steps(response_lengths: list[int], total_lengths: list[int], trainer: dict, world_size: int) -> int:
    """How many optimizer steps `PolicyWorker.update` takes on samples of these lengths (its own plan)."""
    plan = plan_update(
        response_lengths,
        total_lengths,
        mini_batch_size=int(trainer["ppo_mini_batch_size"]),
        micro_batch_size=int(trainer["micro_batch_size"]),
        world_size=world_size,
        epochs=int(trainer["ppo_epochs"]),
        loss_scale=str(trainer["loss_scale"]),
        agg_mode=str(trainer["loss_agg_mode"]),
        shuffle=bool(trainer["shuffle"]),
        pad=str(trainer["pad_batch"]),
        seed=0,  # the seed orders the samples; it never changes how many steps there are
    )
    return len(plan.steps)


def one_step_update(samples: list[Any], trainer: dict, world_size: int) -> bool:
    """Whether the update of these TrainSamples is a single optimizer step (the old log-probs can then be
    taken from its own forward passes)."""
    resp = [len(s.response_ids) for s in samples]
    total = [len(s.prompt_ids) + len(s.response_ids) for s in samples]
    return update_steps(resp, total, trainer, world_size) <= 1


def length_order(samples: list[Any], sort: bool = True) -> list[int]:
    """Positions of `samples` (TrainSamples) by prompt + response length (stable); identity if not `sort`."""
    if not sort:
        return list(range(len(samples)))
    return sorted(range(len(samples)), key=lambda i: len(samples[i].prompt_ids) + len(samples[i].response_ids))


def active_dropout(model: torch.nn.Module) -> list[str]:
    """Names of what makes the train-mode forward differ from the eval-mode one: dropout modules with
    p > 0 and config dropout rates > 0 (HF attention dropout is a config value, not a module)."""
    found = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    config = getattr(model, "config", None)
    for key, value in (vars(config) if config is not None else {}).items():
        if ("dropout" in key or "pdrop" in key) and isinstance(value, (int, float)) and value > 0:
            found.append(f"config.{key}={value}")
    return found
