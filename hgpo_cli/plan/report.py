"""A plan for people (a rich table and a one-line verdict) and for programs (one JSON object)."""

from __future__ import annotations

from typing import Any

from hgpo_cli.plan.advice import Verdict
from hgpo_cli.plan.memory import GIB, plan_summary

WHAT = {
    "policy_weights": "master weights, sharded",
    "gradients": "gradients, sharded",
    "optimizer_state": "AdamW moments, sharded",
    "reference": "frozen reference, sharded",
    "rollout_weights": "engine weights",
    "rollout_kv_cache": "engine KV cache",
    "rollout_activations": "engine batched prefill",
    "runtime_engine": "engine process",
    "runtime": "trainer process",
    "gathered_params": "FSDP2 gathered layers",
    "unsharded_grads": "gradients before reduce-scatter",
    "activations": "saved for backward",
    "logits": "logits, softmax and gradients",
    "critic_weights": "PPO critic's master weights (one worker)",
    "critic_gradients": "PPO critic's gradients",
    "critic_optimizer": "PPO critic's AdamW moments",
    "critic_activations": "PPO critic's micro-batch (saved, casts)",
    "critic_runtime": "critic process",
}


def plan_json(verdict: Verdict, *, preset: str, model: str, shape_source: str) -> dict[str, Any]:
    """The plan as one JSON-ready object: fits, gpus, per_gpu_gib, total_gib, the reason and suggestions."""
    plan = verdict.plan
    s = plan.settings
    out: dict[str, Any] = {
        "preset": preset,
        "model": model,
        **plan_summary(plan),
        "reason": verdict.reason(),
        "verdict": verdict.line(),
        "suggestions": [x.to_dict() for x in verdict.suggestions],
        "shape": plan.shape.to_dict(),
        "shape_source": shape_source,
        "settings": {
            "master_dtype": s.master_dtype,
            "compute_dtype": s.compute_dtype,
            "lora_rank": s.lora_rank,
            "gradient_checkpointing": s.gradient_checkpointing,
            "offload_params": s.offload_params,
            "offload_optimizer": s.offload_optimizer,
            "offload_reference": s.offload_reference,
            "reshard_after_forward": s.reshard_after_forward,
            "reference": s.use_reference,
            "micro_batch_size": s.micro_batch_size,
            "tokens_per_sample": s.tokens,
            "response_tokens": s.response_tokens,
            "engine": s.engine,
            "engine_batch_size": s.engine_batch_size,
            "gpu_memory_utilization": s.gpu_memory_utilization,
            "shares_policy": s.shares_policy,
            "critic": s.critic,
            "critic_gpu": s.critic_gpu,
            "critic_micro_batch_size": s.critic_micro if s.critic else None,
            "critic_compute_dtype": s.critic_compute_dtype if s.critic else None,
            "engine_gpu": s.engine_gpu,
        },
    }
    return out


def plan_table(verdict: Verdict, title: str) -> Any:
    """A rich table: one row per component of the peak phase (GiB), then the total."""
    from rich.table import Table

    plan = verdict.plan
    table = Table(title=title)
    table.add_column("component")
    table.add_column("GiB", justify="right")
    table.add_column("what")
    s = plan.settings
    on_host = {
        "policy_weights": s.offload_params,
        "gradients": s.offload_params,
        "optimizer_state": s.offload_params or s.offload_optimizer,
        "reference": s.use_reference and s.offload_reference,
    }
    for name, value in plan.components.items():
        what = "on the host (offload)" if value == 0 and on_host.get(name) else WHAT.get(name, "")
        if name == "reference" and not s.use_reference:
            what = "none (no KL loss)"
        if name == "rollout_weights" and s.shares_policy:
            what = "none: the engine samples with the policy module (rollout.share_policy)"
        table.add_row(name, f"{value / GIB:.2f}", what)
    table.add_row(
        "[bold]total[/bold]", f"[bold]{plan.total_gib:.2f}[/bold]", f"of {plan.settings.gpu_mem_gib:g} GiB on GPU 0"
    )
    return table


def print_plan(verdict: Verdict, console: Any, *, preset: str, model: str, shape_source: str) -> None:
    """The table, the phases, host memory, the verdict line and the suggestions."""
    plan = verdict.plan
    s = plan.settings
    title = f"memory plan: {preset} ({model}), {s.gpus} GPU(s), {plan.peak_phase} phase"
    console.print(plan_table(verdict, title))
    phases = ", ".join(f"{k} {v / GIB:.1f}" for k, v in plan.phase_totals.items())
    others = f"; each other GPU {plan.other_gpu_bytes / GIB:.1f}" if plan.other_gpu_bytes else ""
    others += "".join(f"; {name} {value / GIB:.1f}" for name, value in plan.elsewhere.items())
    console.print(f"phases (GiB on GPU 0): {phases}{others}; host memory for offload: {plan.host_bytes / GIB:.1f} GiB")
    if plan.critic:
        where = "beside rank 0 on GPU 0" if s.critic_gpu == "gpu0" else "on a GPU of its own"
        console.print(
            f"PPO critic {where}: {sum(plan.critic.values()) / GIB:.1f} GiB "
            f"(micro-batch {s.critic_micro}, computes in {s.critic_compute_dtype})"
        )
    console.print(f"{plan.params.total:,} parameters ({plan.trainable:,} trained); shape from {shape_source}")
    colour = "green" if verdict.fits else "red"
    console.print(f"[bold {colour}]{verdict.line()}[/]")
