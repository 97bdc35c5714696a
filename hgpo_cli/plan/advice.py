"""The verdict of a plan and, when it does not fit, the settings that would make it fit.

Every suggestion is found by re-running the plan with the change applied (nothing is guessed):
- more GPUs: the smallest GPU count (trainer.num_workers) up to MAX_GPUS that fits;
- offload: the policy's parameters (and with them gradients, optimizer state and step) to the host; the
  reference model to the host;
- gradient checkpointing, when it is off;
- a smaller micro-batch: the largest trainer.micro_batch_size below the current one that fits;
- a smaller rollout share: vLLM's largest gpu_memory_utilization (steps of 0.05) below the current one,
  the HF engine's largest rollout.batch_size below the current one, that fits;
- with a PPO critic beside rank 0: a GPU of its own (critic.num_gpus=1), and the largest
  critic.micro_batch_size below the current one that fits.
A change the run's config would refuse (`valid`, e.g. a micro-batch that does not divide the mini-batch
under trainer.loss_scale=micro) is skipped. When no offload or checkpointing alone fits, all of them
together are tried too; when nothing fits at all, a GPU count and a micro-batch are searched with all of
them applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hgpo_cli.plan.memory import GIB, MemoryPlan, compute_plan
from hgpo_cli.plan.settings import PlanSettings
from hgpo_cli.plan.shapes import ModelShape

MAX_GPUS = 64
INT_KEYS = ("trainer.num_workers", "trainer.micro_batch_size", "rollout.batch_size", "critic.micro_batch_size")


@dataclass
class Suggestion:
    """A change that makes the plan fit: config overrides (trainer.num_workers for the GPU count)."""

    overrides: list[str]
    gpus: int
    total_gib: float
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.label,
            "overrides": list(self.overrides),
            "gpus": self.gpus,
            "total_gib": round(self.total_gib, 2),
        }


@dataclass
class Verdict:
    plan: MemoryPlan
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.plan.fits

    def reason(self) -> str:
        """Why it does not fit (empty when it fits)."""
        plan = self.plan
        if plan.fits:
            return ""
        if plan.problems:
            return "; ".join(plan.problems)
        if plan.busiest != "GPU 0":
            return (
                f"{plan.busiest_bytes / GIB:.1f} GiB needed on {plan.busiest}, {plan.settings.gpu_mem_gib:g} GiB there"
            )
        parts = ", ".join(f"{name} {gib:.1f}" for name, gib in plan.largest(3))
        return (
            f"{plan.total_gib:.1f} GiB needed on GPU 0 in the {plan.peak_phase} phase, "
            f"{plan.settings.gpu_mem_gib:g} GiB there (largest: {parts} GiB)"
        )

    def line(self) -> str:
        """The one-line verdict."""
        plan = self.plan
        s = plan.settings
        if plan.fits:
            busiest = plan.busiest_bytes / GIB
            where = f"{plan.peak_phase} phase" if plan.busiest == "GPU 0" else plan.busiest
            return (
                f"fits: {busiest:.1f} of {s.gpu_mem_gib:g} GiB on the busiest of {plan.gpus_used} GPU(s) "
                f"({where}, {s.gpu_mem_gib - busiest:.1f} GiB free)"
            )
        text = f"does not fit on {plan.gpus_used} x {s.gpu_mem_gib:g} GiB: {self.reason()}"
        if self.suggestions:
            return text + "; would fit with: " + " | ".join(x.label for x in self.suggestions)
        if plan.problems and all("what would help: " in x for x in plan.problems):
            return text  # the problems name their remedies (a critic larger than one GPU)
        return text + "; no single setting the plan knows makes it fit"


def _label(overrides: list[str], gpus: int, base_gpus: int) -> str:
    shown = [o if o != "critic.num_gpus=1" else f"{o} (its own GPU)" for o in overrides]
    shown = [o for o in shown if not o.startswith("trainer.num_workers=")]
    if gpus != base_gpus:
        shown.insert(0, f"trainer.num_workers={gpus} ({gpus} GPUs)")
    return " ".join(shown)


def _apply(settings: PlanSettings, overrides: list[str]) -> PlanSettings:
    for item in overrides:
        key, raw = item.split("=", 1)
        value: Any
        if raw in ("true", "false"):
            value = raw == "true"
        elif key in INT_KEYS:
            value = int(raw)
        else:
            value = float(raw)
        settings = settings.with_override(key, value)
    return settings


Valid = Callable[[list[str]], bool]


def _any(overrides: list[str]) -> bool:
    return True


@dataclass
class _Search:
    """Re-runs the plan of `base` with overrides; `valid` says whether the run's config accepts them."""

    shape: ModelShape
    base: PlanSettings
    valid: Valid

    def attempt(self, overrides: list[str]) -> Suggestion | None:
        if not self.valid(overrides):
            return None
        settings = _apply(self.base, overrides)
        plan = compute_plan(self.shape, settings)
        if not plan.fits:
            return None
        label = _label(overrides, settings.gpus, self.base.gpus)
        return Suggestion(overrides, settings.gpus, plan.busiest_bytes / GIB, label)

    def fewest_gpus(self, extra: list[str]) -> Suggestion | None:
        for gpus in range(self.base.gpus + 1, MAX_GPUS + 1):
            found = self.attempt([*extra, f"trainer.num_workers={gpus}"])
            if found is not None:
                return found
        return None

    def largest_below(self, key: str, values: list[Any], extra: list[str]) -> Suggestion | None:
        """The first of `values` (largest first) that fits."""
        for value in values:
            found = self.attempt([*extra, f"{key}={value:g}"])
            if found is not None:
                return found
        return None

    def shrinks(self, extra: list[str]) -> list[Suggestion]:
        """Smaller micro-batch, smaller rollout share, in that order (each the largest value that fits)."""
        base = self.base
        found = [self.largest_below("trainer.micro_batch_size", list(range(base.micro_batch_size - 1, 0, -1)), extra)]
        if base.engine == "vllm":
            steps = int(round(base.gpu_memory_utilization / 0.05))
            values = [round(k * 0.05, 2) for k in range(steps - 1, 0, -1)]
            found.append(self.largest_below("rollout.gpu_memory_utilization", values, extra))
        else:
            values = list(range(base.engine_batch_size - 1, 0, -1))
            found.append(self.largest_below("rollout.batch_size", values, extra))
        if base.critic:
            values = list(range(base.critic_micro - 1, 0, -1))
            found.append(self.largest_below("critic.micro_batch_size", values, extra))
        return [x for x in found if x is not None]


def judge(shape: ModelShape, settings: PlanSettings, valid: Valid | None = None) -> Verdict:
    """The plan of `settings` and, when it does not fit, the suggestions (see the module docstring).
    valid(overrides): whether the run's config accepts those overrides (default: any)."""
    plan = compute_plan(shape, settings)
    verdict = Verdict(plan)
    if plan.fits:
        return verdict
    search = _Search(shape, settings, valid or _any)
    toggles: list[list[str]] = []
    if not settings.offload_params:
        toggles.append(["trainer.fsdp.offload_params=true"])  # the optimizer state and step go with them
    if settings.use_reference and not settings.offload_reference:
        toggles.append(["trainer.fsdp.offload_reference=true"])
    if not settings.gradient_checkpointing:
        toggles.append(["model.gradient_checkpointing=true"])
    if settings.critic_gpu == "gpu0":
        toggles.append(["critic.num_gpus=1"])  # the critic on a GPU of its own
    combined = [item for toggle in toggles for item in toggle]

    found: list[Suggestion | None] = [search.fewest_gpus([])]
    found.extend(search.attempt(toggle) for toggle in toggles)
    singles_fit = any(x is not None for x in found)
    if len(toggles) > 1 and not any(x is not None for x in found[1:]):
        found.append(search.attempt(combined))  # the offloads and checkpointing together
    found.extend(search.shrinks([]))
    verdict.suggestions = [x for x in found if x is not None]
    if verdict.suggestions or not combined or singles_fit:
        return verdict
    with_gpus = search.fewest_gpus(combined)
    verdict.suggestions = [x for x in [with_gpus, *search.shrinks(combined)] if x is not None]
    return verdict
