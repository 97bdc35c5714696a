"""The published numbers that `hgpo compare` puts beside ours, as data, each with its source.

Transcribed from the project spec ("Published numbers to put side by side"), which condenses
- the HGPO paper: He et al., "Hierarchy-of-Groups Policy Optimization for Long-Horizon Agentic Tasks",
  ICLR 2026, arXiv 2602.22817 (ALFWorld in-/out-of-distribution success, WebShop score/success, WebShop
  with 30 turns);
- the GiGPO paper: Feng et al., arXiv 2505.10978, Table 1 (ALFWorld per task type and all, WebShop score
  and success with 15 turns; its memory length K is not stated there).
All values are percentages, means over 3 seeds. `k=None` marks a number whose K the source does not give:
it is shown beside our rows of any K.

Column keys (shared with `hgpo_cli.eval.compare`): alfworld/<Pick|Look|Clean|Heat|Cool|Pick2|All> for the
in-distribution split, alfworld-ood/All for the out-of-distribution split, webshop/score, webshop/success.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HGPO_PAPER = "HGPO paper"
GIGPO_PAPER = "GiGPO paper"
SOURCES = {
    HGPO_PAPER: "He et al., Hierarchy-of-Groups Policy Optimization, ICLR 2026, arXiv 2602.22817",
    GIGPO_PAPER: "Feng et al., Group-in-Group Policy Optimization, arXiv 2505.10978, Table 1",
}
QWEN_1_5B = "Qwen2.5-1.5B-Instruct"
QWEN_7B = "Qwen2.5-7B-Instruct"
TASK_COLUMNS = ("Pick", "Look", "Clean", "Heat", "Cool", "Pick2")


@dataclass(frozen=True)
class Published:
    source: str  # HGPO_PAPER or GIGPO_PAPER
    method: str  # algorithm.name: grpo, gigpo, hgpo, rloo, ppo
    model: str  # short model name
    k: int | None  # memory / hierarchy length K; None when the source does not state it
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _alf(in_dist: float | None = None, out_dist: float | None = None, tasks: tuple[float, ...] = ()) -> dict:
    values: dict[str, float] = {}
    if in_dist is not None:
        values["alfworld/All"] = in_dist
    if out_dist is not None:
        values["alfworld-ood/All"] = out_dist
    values.update({f"alfworld/{name}": v for name, v in zip(TASK_COLUMNS, tasks, strict=False)})
    return values


def _web(score: float, success: float) -> dict:
    return {"webshop/score": score, "webshop/success": success}


_WEBSHOP_30 = "WebShop with 30 turns"
_WEBSHOP_15 = "WebShop with 15 turns"

PUBLISHED: tuple[Published, ...] = (
    # ---- HGPO paper, Qwen2.5-1.5B-Instruct, ALFWorld in-/out-of-distribution -------------------------------
    Published(HGPO_PAPER, "grpo", QWEN_1_5B, None, _alf(72.8, 70.1)),
    Published(HGPO_PAPER, "gigpo", QWEN_1_5B, 2, _alf(90.16, 84.76)),
    Published(HGPO_PAPER, "hgpo", QWEN_1_5B, 2, _alf(92.77, 90.16)),
    Published(HGPO_PAPER, "gigpo", QWEN_1_5B, 4, {**_alf(93.29, 91.53), **_web(86.80, 73.24)}, _WEBSHOP_30),
    Published(HGPO_PAPER, "hgpo", QWEN_1_5B, 4, {**_alf(94.85, 92.12), **_web(90.64, 78.12)}, _WEBSHOP_30),
    # ---- HGPO paper, Qwen2.5-7B-Instruct ----------------------------------------------------------------
    Published(HGPO_PAPER, "grpo", QWEN_7B, 2, _alf(78.64)),
    Published(HGPO_PAPER, "gigpo", QWEN_7B, 2, {**_alf(93.29), **_web(88.93, 77.60)}, _WEBSHOP_30),
    Published(HGPO_PAPER, "hgpo", QWEN_7B, 2, {**_alf(95.44), **_web(88.96, 78.51)}, _WEBSHOP_30),
    Published(HGPO_PAPER, "gigpo", QWEN_7B, 4, _alf(95.63, 95.18)),
    Published(HGPO_PAPER, "hgpo", QWEN_7B, 4, {**_alf(95.96, 94.87), **_web(90.49, 79.29)}, _WEBSHOP_30),
    # ---- GiGPO paper, Qwen2.5-1.5B-Instruct (ALFWorld all and per task type; WebShop score / success) -------
    Published(GIGPO_PAPER, "ppo", QWEN_1_5B, None, {**_alf(54.4), **_web(73.8, 51.5)}, _WEBSHOP_15),
    Published(GIGPO_PAPER, "rloo", QWEN_1_5B, None, {**_alf(69.7), **_web(73.9, 52.1)}, _WEBSHOP_15),
    Published(
        GIGPO_PAPER,
        "grpo",
        QWEN_1_5B,
        None,
        {**_alf(72.8, tasks=(85.3, 53.7, 84.5, 78.2, 59.7, 53.5)), **_web(75.8, 56.8)},
        _WEBSHOP_15,
    ),
    Published(
        GIGPO_PAPER,
        "gigpo",
        QWEN_1_5B,
        None,
        {**_alf(86.7, tasks=(94.4, 67.5, 94.8, 94.4, 79.8, 76.4)), **_web(83.1, 65.0)},
        _WEBSHOP_15,
    ),
)


def model_key(name: str) -> str:
    """Case-insensitive model identity: 'Qwen/Qwen2.5-1.5B-Instruct' and 'qwen2.5-1.5b-instruct' match."""
    return str(name).rstrip("/").rsplit("/", 1)[-1].lower()


def published_for(method: str, model: str, k: int | None) -> list[Published]:
    """The published entries for a row: same method and model, and the same K (or a K the source leaves
    unstated). Ordered HGPO paper first."""
    key = model_key(model)
    found = [p for p in PUBLISHED if p.method == method and model_key(p.model) == key and p.k in (k, None)]
    return sorted(found, key=lambda p: (p.source != HGPO_PAPER, p.k is None))
