"""One training iteration of a preset (default: `default`, the main job's 1.2M model; `--preset smollm2`:
SmolLM2-135M) with the plain paths and with the fast ones, side by side.

Runs the real Trainer (Ray env workers, engine, policy worker, the real loss) twice in one process on the
same seed, each for one warm-up iteration and the timed one (`--warmup N`; 0 times the cold first
iteration, which also pays the env workers' first game loads and the first generate call): first with every
fast path off (a separate HF engine actor with its own copy of the weights, synced after the update; a
separate old-log-prob pass; samples in batch order; one forward row per step sample), then with the
defaults (the engine in the policy worker; the old log-probs from the update's own forward pass when it is
one optimizer step, else those the rollout recorded; micro-batches of similar lengths; identical step
samples sharing one forward row; see hgpo_cli/train/fast_paths.py and dedup.py). It prints
each phase's seconds (the trainer's time/* metrics), the ratio, and the compute floor of each phase:

    floor FLOPs = passes x 2 x (decoder matmul parameters x tokens + lm_head parameters x logit tokens)

with tokens = prompt + response tokens of every step sample, logit tokens = response tokens, passes = 1
for the rollout (prefill + decode) and the reference log-probs, 3 for the update (forward + backward), 0
for advantages and weight sync (the old log-probs are not in the floor: the fast path shows they need
no pass). Attention scores and the optimizer step are left out, so the floor is a lower bound. It is
divided by the fp32 matmul throughput measured here (torch, 1024^3, all cores; the best of several
products before and after the two runs).

    python3 benchmarks/bench_iteration.py [--preset default|smollm2] [key=value ...]

The last line reads `iteration speed-up: N.NNx (floor ratio M.MMx)`: plain / fast seconds of the whole
iteration, and fast seconds / floor seconds. Measured on the 2-core machine (results/bench-iteration/):
`default` (2026-12-07, 2 minutes with the warm start cached) 1.43x (floor ratio 3.96x) at iteration 2,
1.52x (5.45x) cold; `smollm2` (2026-12-01, cold, 6.6 minutes with SmolLM2's first build) 1.34x (2.15x).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

PHASES = ("rollout", "advantages", "log_probs", "update", "weight_sync")
PLAIN = [
    "rollout.share_policy=false",
    "trainer.fuse_old_log_probs=false",
    "trainer.old_log_probs_from_rollout=false",
    "trainer.sort_by_length=false",
    "trainer.dedup_samples=false",
]
FAST = [
    "rollout.share_policy=auto",
    "trainer.fuse_old_log_probs=auto",
    "trainer.old_log_probs_from_rollout=auto",
    "trainer.sort_by_length=true",
    "trainer.dedup_samples=true",
]


def matmul_gflops(size: int = 1024, repeats: int = 8) -> float:
    """Best fp32 matmul throughput of torch on all cores, GFLOP/s (2 n^3 per product)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        clock = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - clock)
    torch.set_num_threads(threads)
    return 2 * size**3 / best / 1e9


def matmul_params(model_path: str) -> tuple[int, int]:
    """(decoder matmul weights applied to every token, lm_head weights applied to each logit position)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    body = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    return body, head.weight.numel()


def row_of(record: Any) -> tuple:
    return tuple(record.extra["prompt_ids"]), tuple(record.extra["response_ids"])


def floor_flops(records: list, body: int, head: int) -> dict[str, float]:
    """Each phase's FLOPs from the step samples' token counts (see the module docstring)."""
    tokens = sum(len(r.extra["prompt_ids"]) + len(r.extra["response_ids"]) for r in records)
    logits = sum(len(r.extra["response_ids"]) for r in records)
    one_pass = 2.0 * (body * tokens + head * logits)
    return {"rollout": one_pass, "advantages": 0.0, "log_probs": one_pass, "update": 3 * one_pass, "weight_sync": 0.0}


def run_iterations(preset: str, overrides: list[str], out: Path, warmup: int) -> tuple[dict, list, list]:
    """`warmup` + 1 iterations of a fresh Trainer; returns (the last one's metrics, the first one's step
    records, the last one's step records). Startup is not timed; the warm-up iterations pay what a run
    pays once (the env workers' first game loads and imports, the first generate call's allocations), so
    the last iteration is what each of a run's later iterations costs."""
    from hgpo_cli.config import load_config
    from hgpo_cli.train.trainer import Trainer

    total = warmup + 1
    settings = [*overrides, f"trainer.output_dir={out}", f"trainer.iterations={total}", "logging.mode=disabled"]
    cfg = load_config(preset, settings)
    trainer = Trainer(cfg)
    try:
        first = None
        for it in range(total):
            metrics, result, _ = trainer.iteration(it)
            first = result.records if first is None else first
    finally:
        trainer.close()
    return metrics, first, result.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument(
        "--warmup", type=int, default=1, help="iterations run before the timed one (0: time the first, cold)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value settings for both runs")
    args = parser.parse_args()
    import ray

    from hgpo_cli.config import load_config
    from hgpo_cli.models.loading import resolve_model_path

    cfg = load_config(args.preset, args.overrides)
    model_path = resolve_model_path(cfg.model.path)
    gflops = matmul_gflops()
    load = os.getloadavg()[0]
    print(f"preset {args.preset} ({cfg.model.path}); fp32 matmul {gflops:.1f} GFLOP/s; load average {load:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench_iteration_") as tmp:
        plain, plain_first, plain_records = run_iterations(
            args.preset, [*args.overrides, *PLAIN], Path(tmp) / "plain", args.warmup
        )
        fast, fast_first, fast_records = run_iterations(
            args.preset, [*args.overrides, *FAST], Path(tmp) / "fast", args.warmup
        )
    ray.shutdown()
    # the machine's throughput: the better of the measurements before and after (a loaded machine lowers it)
    gflops = max(gflops, matmul_gflops())
    print(f"fp32 matmul for the floor (best before / after): {gflops:.1f} GFLOP/s")
    # the first iterations start from the same weights: the same tokens must come out of both
    same = [r.extra["response_ids"] for r in plain_first] == [r.extra["response_ids"] for r in fast_first]
    body, head = matmul_params(model_path)
    flops = floor_flops(fast_records, body, head)
    tokens = sum(len(r.extra["prompt_ids"]) + len(r.extra["response_ids"]) for r in fast_records)
    print(
        f"{len(fast_records)} step samples, {tokens} tokens; {body / 1e6:.1f}M decoder + {head / 1e6:.1f}M "
        f"lm_head matmul parameters; same sampled tokens in both runs' first iteration: {'yes' if same else 'NO'}"
    )
    timed = "the first (cold)" if args.warmup == 0 else f"iteration {args.warmup + 1}, after {args.warmup} warm-up"
    print(
        f"timed: {timed}; step samples plain {len(plain_records)}, fast {len(fast_records)} "
        f"({len(set(map(row_of, fast_records)))} distinct (prompt, response) rows)"
    )
    print(
        f"fast paths: shared policy {bool(fast['batch/shared_policy'])}, "
        f"fused old log-probs {bool(fast['batch/fused_old_log_probs'])}, "
        f"old log-probs from the rollout {bool(fast['batch/rollout_old_log_probs'])}"
    )
    print(f"{'phase':<12} {'plain s':>9} {'fast s':>9} {'ratio':>7} {'floor s':>9} {'fast/floor':>10}")
    for phase in PHASES:
        before, after = plain.get(f"time/{phase}", 0.0), fast.get(f"time/{phase}", 0.0)
        floor = flops[phase] / (gflops * 1e9)
        ratio = f"{before / after:.2f}x" if after > 1e-3 else "-"
        vs_floor = f"{after / floor:.2f}x" if floor > 0 else "-"
        print(f"{phase:<12} {before:>9.2f} {after:>9.2f} {ratio:>7} {floor:>9.2f} {vs_floor:>10}")
    total_before, total_after = plain["time/iteration"], fast["time/iteration"]
    total_floor = sum(flops.values()) / (gflops * 1e9)
    print(
        f"{'iteration':<12} {total_before:>9.2f} {total_after:>9.2f} {total_before / total_after:>6.2f}x "
        f"{total_floor:>9.2f} {total_after / total_floor:>9.2f}x"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"iteration speed-up: {total_before / total_after:.2f}x (floor ratio {total_after / total_floor:.2f}x)")


if __name__ == "__main__":
    main()
