"""The memory plan: bytes on GPU 0 (rank 0's, which also holds the rollout engine), phase by phase, and on
every other GPU that holds more than a trainer rank.

Notation: P parameters, T trainable parameters (P, or the LoRA adapters'), layer / root the parameters of
one decoder layer / of FSDP2's root unit (embeddings, final norm, lm_head), N = settings.gpus (the FSDP
world size), m / c the bytes of the master / compute dtype, b the micro-batch, S = prompt + response
tokens (every sample padded to the limits: the worst case), R the response tokens, L layers, H hidden,
I intermediate, q = heads x head_dim, kv = kv_heads x head_dim, V vocabulary, G the GPU memory.

Always on the GPU (every phase):
- policy_weights   P m / N                 (0 with offload_params: FSDP2 CPUOffloadPolicy)
- gradients        T m / N                 (kept between updates; 0 with offload_params)
- optimizer_state  2 T m / N               (AdamW exp_avg and exp_avg_sq in the parameters' dtype; 0 with
                                            offload_params (the step runs on the host); with offload_optimizer
                                            alone it is on the host except during the optimizer step)
- reference        P c / N                 (frozen, sharded in the compute dtype; 0 with offload_reference or
                                            without a KL loss)
- rollout engine   vLLM: max(u G, P c), the share it reserves (u = gpu_memory_utilization): its weights P c
                   plus the KV cache u G - P c. HF: weights P c, KV cache
                   B S L 2 kv c (B = rollout.batch_size), and the batched prefill of one layer B S (2H + 3I) c.
                   With rollout.share_policy resolved to sharing (settings.shares_policy) there is no engine
                   actor: rank 0's HF engine samples with the policy module itself, so no engine weights and
                   no engine process; its KV cache and prefill are rank 0's, in the rollout phase only (one
                   process, one caching allocator: what generation frees, the update reuses).
- runtime          1 GiB per process on the GPU (CUDA context, NCCL, allocator slack): the trainer rank, and
                   the HF engine's actor (vLLM's own is inside its share).

The update (forward + backward of one micro-batch) adds:
- gathered_params  (2 layer + root) c: FSDP2 all-gathers one layer at a time and prefetches the next; the
                   root stays gathered (reshard_after_forward=false: the whole model, P c). 0 without FSDP
                   (one rank, compute dtype = master dtype, no offload).
- unsharded_grads  layer_T (c + 4) + root_T c: one layer's gradient before its fp32 reduce-scatter and the
                   root's, which lives through the backward. 0 without FSDP (counted in gradients).
- activations      checkpointing: b S (L H c + A + F), every layer's input plus one layer recomputed in
                   full; without: b S (L A + F). A, the bytes autograd keeps per token of one layer:
                   A = c (4H + 3q + 2kv + 4I) + 8H (normed inputs, rotated q and k, v, attention output and
                   its reshaped copy, gate, up, SiLU(gate), their product, and each RMSNorm's fp32 input);
                   F = (4 + 2c) H, the final norm's fp32 input, its output and the lm_head input (a slice
                   that keeps the whole sequence's storage).
- logits           b (R+1) V (4 (2 + s + e) + c'): fp32 logits, the fp32 gradient, the fp32 copy divided by
                   the temperature (s = 1 when T is not 0 or 1), the per-row softmax kept for the entropy
                   (e = 1 with an entropy bonus), and the compute-dtype gradient into lm_head (c' = c when
                   c < 4, else 0).

The optimizer step (after the backward: activations and logits are freed) adds, with offload_optimizer
alone, the optimizer_state 2 T m / N it brings back to the GPU for the step.
The log-prob phase (old and reference log-probs, no autograd) adds gathered_params, one layer's forward
b S c (2H + q + 2kv + 3I), and logits b (R+1) V (c + 4 + 4 s) + (R+1) V 4 (one row's fp32 logsumexp).
The rollout phase adds nothing to the always-present parts (but a shared engine's KV cache and prefill).
The plan's total is the largest phase.

The PPO critic (algorithm.name=ppo, hgpo_cli/train/critic_worker.py) is one unsharded actor on one GPU
(settings.critic_gpu: beside rank 0, or a GPU of its own), its own process, so its peak stays reserved in
every phase. With P' = P - lm_head + H + 1 (the value model), m its master dtype, c' its compute dtype
(settings.critic_compute_dtype), b' its micro-batch:
- critic_weights P' m, critic_gradients P' m (kept between updates), critic_optimizer 2 P' m (AdamW);
- critic_activations, one micro-batch of the update: without autocast (c' = m) the policy's b' S (L A + F)
  (checkpointing: b' S (L H c' + A + F)) in c'. With bf16 autocast over fp32 master weights the residual
  stream stays in m: per token and layer A' = (2m + 8) H + c' (5H + 3q + 2kv + 4I) (both RMSNorms' input
  and fp32 output, the three casts of the normed input for q, k, v, the two for gate and up, q, k and v
  for attention, its output, the o_proj input, gate, up, SiLU(gate)), F' = (m + 4) H + c' H, and autocast
  keeps a c' copy of every projection weight W (linear_params_per_layer): without checkpointing
  b' S (L A' + F') + L W c'; with it b' S (L H m + F') + max(L W c', b' S A' + W c') (the forward caches
  every layer's copy; the backward recomputes one layer). The value head's output (one number a token)
  is left out;
- critic_runtime 1 GiB (its process on the GPU).
A critic larger than one GPU is a problem of its own: it cannot be sharded or offloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hgpo_cli.plan.params import (
    ParamCounts,
    count_params,
    count_value_params,
    linear_params_per_layer,
    trainable_params,
)
from hgpo_cli.plan.settings import PlanSettings, dtype_bytes
from hgpo_cli.plan.shapes import ModelShape

GIB = float(2**30)
RUNTIME_GIB = 1.0
PHASES = ("rollout", "log_probs", "update", "step")


@dataclass
class MemoryPlan:
    """Bytes per phase and component on the busiest GPU, the verdict and what is left on the host."""

    shape: ModelShape
    settings: PlanSettings
    params: ParamCounts
    trainable: int
    phases: dict[str, dict[str, float]]
    host_bytes: float
    problems: list[str] = field(default_factory=list)
    # peak bytes of each other GPU that holds more than a trainer rank ("GPU 1": rank 1 and the engine,
    # "the critic's GPU"), and the critic's parts wherever it is (empty without a critic)
    elsewhere: dict[str, float] = field(default_factory=dict)
    critic: dict[str, float] = field(default_factory=dict)

    @property
    def phase_totals(self) -> dict[str, float]:
        return {name: sum(parts.values()) for name, parts in self.phases.items()}

    @property
    def peak_phase(self) -> str:
        totals = self.phase_totals
        return max(PHASES, key=lambda name: totals[name])

    @property
    def components(self) -> dict[str, float]:
        """Bytes of each component in the peak phase (they add up to `total_bytes`)."""
        return dict(self.phases[self.peak_phase])

    @property
    def total_bytes(self) -> float:
        return self.phase_totals[self.peak_phase]

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    @property
    def gpus_used(self) -> int:
        """GPUs the run takes: the trainer's, and one more for a critic on a GPU of its own."""
        return self.settings.gpus + int(self.settings.critic_gpu == "own")

    @property
    def busiest(self) -> str:
        """Which GPU holds the most: "GPU 0" or a key of `elsewhere`."""
        name = max(self.elsewhere, key=lambda k: self.elsewhere[k], default="")
        return name if name and self.elsewhere[name] > self.total_bytes else "GPU 0"

    @property
    def busiest_bytes(self) -> float:
        return max([self.total_bytes, *self.elsewhere.values()])

    @property
    def fits(self) -> bool:
        return not self.problems and self.busiest_bytes / GIB <= self.settings.gpu_mem_gib

    @property
    def other_gpu_bytes(self) -> float:
        """The largest phase on a GPU with a trainer rank alone (no engine, no critic); 0 when none is."""
        s = self.settings
        if s.gpus - 1 - int(s.engine_gpu == 1) < 1:
            return 0.0
        return max(
            sum(v for k, v in parts.items() if not k.startswith(("rollout_", "runtime_engine", "critic_")))
            for parts in self.phases.values()
        )

    def largest(self, count: int = 3) -> list[tuple[str, float]]:
        """The `count` largest components of the peak phase, (name, GiB)."""
        items = sorted(self.components.items(), key=lambda kv: -kv[1])
        return [(name, value / GIB) for name, value in items[:count] if value > 0]


def activation_bytes_per_token_layer(shape: ModelShape, c: int) -> int:
    """A: bytes autograd keeps per token of one decoder layer, c (4H + 3q + 2kv + 4I) + 8H."""
    h = shape.hidden
    return c * (4 * h + 3 * shape.q_dim + 2 * shape.kv_dim + 4 * shape.intermediate) + 8 * h


def engine_parts(shape: ModelShape, params: ParamCounts, s: PlanSettings) -> tuple[dict[str, float], list[str]]:
    """The rollout engine's bytes on its GPU, and problems (a vLLM share too small for its weights). With a
    shared policy (settings.shares_policy) no weights and no engine process: the HF engine's KV cache and
    prefill only, which compute_plan puts in rank 0's rollout phase."""
    c = s.compute_bytes
    weights = 0.0 if s.shares_policy else float(params.total * c)
    problems: list[str] = []
    if s.engine == "vllm":
        share = s.gpu_memory_utilization * s.gpu_mem_gib * GIB
        one_sequence = float(s.tokens * shape.layers * 2 * shape.kv_dim * c)
        if share < weights + one_sequence:
            problems.append(
                f"rollout.gpu_memory_utilization={s.gpu_memory_utilization:g} gives vLLM {share / GIB:.1f} GiB, "
                f"less than its weights ({weights / GIB:.1f} GiB) plus one sequence's KV cache"
            )
        return {"rollout_weights": weights, "rollout_kv_cache": max(0.0, share - weights)}, problems
    batch = s.engine_batch_size
    kv = float(batch * s.tokens * shape.layers * 2 * shape.kv_dim * c)
    prefill = float(batch * s.tokens * (2 * shape.hidden + 3 * shape.intermediate) * c)
    parts = {"rollout_weights": weights, "rollout_kv_cache": kv, "rollout_activations": prefill}
    if not s.shares_policy:
        parts["runtime_engine"] = RUNTIME_GIB * GIB if s.on_gpu else 0.0
    return parts, problems


def critic_activation_bytes(shape: ModelShape, s: PlanSettings) -> float:
    """Peak bytes of one critic micro-batch's update beyond its weights, gradients and AdamW state
    (formulas in the module docstring): saved activations and, under bf16 autocast, the weight copies."""
    m, c = s.master_bytes, dtype_bytes(s.critic_compute_dtype)
    tokens = float(s.critic_micro * s.tokens)  # b' S
    h, layers = shape.hidden, shape.layers
    if c == m:  # no autocast: everything in the master dtype, as the policy's formula
        per_layer = activation_bytes_per_token_layer(shape, c)
        final = (4 + 2 * c) * h
        if s.gradient_checkpointing:
            return tokens * (layers * h * c + per_layer + final)
        return tokens * (layers * per_layer + final)
    per_layer = (2 * m + 8) * h + c * (5 * h + 3 * shape.q_dim + 2 * shape.kv_dim + 4 * shape.intermediate)
    final = (m + 4) * h + c * h
    casts = float(linear_params_per_layer(shape) * c)  # one layer's projection weights in c'
    if s.gradient_checkpointing:
        return tokens * (layers * h * m + final) + max(layers * casts, tokens * per_layer + casts)
    return tokens * (layers * per_layer + final) + layers * casts


def critic_parts(shape: ModelShape, s: PlanSettings) -> tuple[dict[str, float], list[str]]:
    """The critic's bytes on its GPU (empty without a critic), and the problem when they exceed one GPU."""
    if not s.critic:
        return {}, []
    value_shape = s.critic_shape or shape
    p, m = count_value_params(value_shape), s.master_bytes
    parts = {
        "critic_weights": float(p * m),
        "critic_gradients": float(p * m),
        "critic_optimizer": float(2 * p * m),
        "critic_activations": critic_activation_bytes(value_shape, s),
        "critic_runtime": RUNTIME_GIB * GIB if s.on_gpu else 0.0,
    }
    total = sum(parts.values())
    if total <= s.gpu_mem_gib * GIB:
        return parts, []
    state = 4.0 * p * m
    if state + parts["critic_runtime"] > s.gpu_mem_gib * GIB:
        cause = f"{state / GIB:.1f} GiB of it the {s.master_dtype} weights, gradients and AdamW state"
        helps = "a smaller critic.model_path"
    else:
        cause = f"{parts['critic_activations'] / GIB:.1f} GiB of it one micro-batch of {s.critic_micro}"
        helps = "a smaller critic.micro_batch_size"
        helps += "" if s.gradient_checkpointing else ", model.gradient_checkpointing=true"
    problem = (
        f"the PPO critic needs {total / GIB:.1f} GiB on one GPU, more than its {s.gpu_mem_gib:g} GiB "
        f"(one unsharded worker, no FSDP or offload; {p:,} parameters, {cause}); what would help: "
        f"{helps}, or GPUs of at least {math.ceil(total / GIB)} GiB"
    )
    return parts, [problem]


def compute_plan(shape: ModelShape, s: PlanSettings) -> MemoryPlan:
    """The plan of one configuration (formulas in the module docstring)."""
    params = count_params(shape)
    layer_t, root_t = trainable_params(shape, s.lora_rank)
    trainable = layer_t * shape.layers + root_t
    n, m, c = s.gpus, s.master_bytes, s.compute_bytes
    b, tokens, resp = s.micro_batch_size, s.tokens, s.response_tokens + 1

    weights = 0.0 if s.offload_params else params.total * m / n
    grads = 0.0 if s.offload_params else trainable * m / n
    optim = 2.0 * trainable * m / n
    optim_always = 0.0 if (s.offload_params or s.offload_optimizer) else optim
    optim_update = optim if (s.offload_optimizer and not s.offload_params) else 0.0
    reference = params.total * c / n if (s.use_reference and not s.offload_reference) else 0.0
    engine, problems = engine_parts(shape, params, s)
    critic, critic_problems = critic_parts(shape, s)
    problems += critic_problems
    # what Ray puts beside rank 0 in every phase: the engine actor (unless shared or on GPU 1), the critic
    beside = dict(engine) if s.engine_gpu == 0 else {}
    generation = {k: engine[k] for k in ("rollout_kv_cache", "rollout_activations")} if s.shares_policy else {}
    if s.shares_policy:
        beside = {"rollout_weights": 0.0}  # no second copy; the engine's KV cache and prefill: rollout phase
    if s.critic_gpu == "gpu0":
        beside.update(critic)
    always = {
        "policy_weights": weights,
        "gradients": grads,
        "optimizer_state": optim_always,
        "reference": reference,
        **beside,
        "runtime": RUNTIME_GIB * GIB if s.on_gpu else 0.0,
    }

    if s.fsdp:
        gathered = float((2 * params.layer + params.root) * c if s.reshard_after_forward else params.total * c)
        unsharded = float(layer_t * (c + 4) + root_t * c)
    else:
        gathered = unsharded = 0.0
    per_layer = activation_bytes_per_token_layer(shape, c)
    final = (4 + 2 * c) * shape.hidden
    if s.gradient_checkpointing:
        activations = float(b * tokens * (shape.layers * shape.hidden * c + per_layer + final))
    else:
        activations = float(b * tokens * (shape.layers * per_layer + final))
    c_grad = c if c < 4 else 0
    logit_bytes = 4 * (2 + int(s.scaled_logits) + int(s.entropy)) + c_grad
    logits = float(b * resp * shape.vocab * logit_bytes)

    forward_layer = float(b * tokens * c * (2 * shape.hidden + shape.q_dim + 2 * shape.kv_dim + 3 * shape.intermediate))
    lp_logits = float(b * resp * shape.vocab * (c + 4 + 4 * int(s.scaled_logits)) + resp * shape.vocab * 4)

    phases = {
        "rollout": {**always, **generation},
        "log_probs": {**always, "gathered_params": gathered, "activations": forward_layer, "logits": lp_logits},
        "update": {
            **always,
            "gathered_params": gathered,
            "unsharded_grads": unsharded,
            "activations": activations,
            "logits": logits,
        },
        "step": {**always, "optimizer_state": optim_always + optim_update},
    }
    host = 0.0
    if s.offload_params:
        host += params.total * m + 3.0 * trainable * m  # sharded over the ranks: the whole model in all
    elif s.offload_optimizer:
        host += 2.0 * trainable * m
    if s.use_reference and s.offload_reference:
        host += params.total * c
    elsewhere: dict[str, float] = {}
    rank_only = [
        sum(v for k, v in parts.items() if not k.startswith(("rollout_", "runtime_engine", "critic_")))
        for parts in phases.values()
    ]
    if s.engine_gpu == 1:  # rank 1's phases with the engine beside it
        elsewhere["GPU 1"] = max(rank_only) + sum(engine.values())
    if s.critic_gpu == "own":
        elsewhere["the critic's GPU"] = sum(critic.values())
    return MemoryPlan(shape, s, params, trainable, phases, host, problems, elsewhere, critic)


def plan_summary(plan: MemoryPlan) -> dict[str, Any]:
    """The numbers of a plan as plain JSON values (GiB rounded to 0.01)."""
    return {
        "fits": plan.fits,
        "gpus": plan.settings.gpus,
        "gpu_mem_gib": plan.settings.gpu_mem_gib,
        "per_gpu_gib": {k: round(v / GIB, 2) for k, v in plan.components.items()},
        "total_gib": round(plan.total_gib, 2),
        "free_gib": round(plan.settings.gpu_mem_gib - plan.total_gib, 2),
        "peak_phase": plan.peak_phase,
        "phases_gib": {k: round(v / GIB, 2) for k, v in plan.phase_totals.items()},
        "other_gpus_gib": round(plan.other_gpu_bytes / GIB, 2),
        "host_gib": round(plan.host_bytes / GIB, 2),
        "gpus_used": plan.gpus_used,
        "busiest_gpu": plan.busiest,
        "elsewhere_gib": {k: round(v / GIB, 2) for k, v in plan.elsewhere.items()},
        "critic_gib": {k: round(v / GIB, 2) for k, v in plan.critic.items()},
        "params": plan.params.total,
        "trainable_params": plan.trainable,
        "problems": list(plan.problems),
    }
