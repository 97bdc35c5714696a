"""One training iteration of a preset (default: `default`, the main job's 1.2M model; `--preset smollm2`:
SmolLM2-135M) with the plain paths and with the fast ones, side by side.

Runs the real Trainer (Ray env workers, engine, policy worker, the real loss) twice in one process on the
same seed, side by side: a Trainer with every fast path off (a separate HF engine actor with its own copy
of the weights, synced after the update; a separate old-log-prob pass; samples in batch order; one forward
row per step sample; every prompt prefilled in one forward; the last layer at every position) and one with
the defaults (the engine in the policy worker; the old log-probs from the update's own forward pass when it
is one optimizer step, else those the rollout recorded; micro-batches of similar lengths; identical step
samples sharing one forward row; a prompt repeated within a generate call prefilled once, the distinct ones
8 at a time, into a KV cache with room for the reply; the last layer's MLP and queries only where logits are
kept; step samples with the same prompt in one packed row; see hgpo_cli/train/fast_paths.py, hgpo_cli/dedup.py,
hgpo_cli/models/trim.py and hgpo_cli/train/shared_prompts.py).
They take turns, iteration by iteration: `--warmup` iterations each (1; they pay what a run pays once: the
env workers' first game loads, the first generate call), then `--timed` iterations each (3), summed. Both
runs' iterations of one index fall in the same minute, so a change of the machine's speed (this shared
2-core machine's varies by a third within minutes) falls on both. It prints
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
`default` (2026-12-07, about 3.5 minutes with the warm start cached) 1.45x and 1.40x in two runs (floor
ratio 2.05x / 3.66x: the matmul throughput read 87 and 141 GFLOP/s), 1.44x (2.81x) in a third after the
ALFWorld engine's shallow context copies; on an AVX-512 host that evening 1.49x (3.28x), then 1.60x (3.33x)
with model.trim_last_mlp, and `smollm2` there 1.51x (1.67x; 10 minutes with SmolLM2's build); in the
sixth session (the same host kind) 1.46x, 1.70x with rollout.prefill_chunk, 1.82x (2.44x) with
model.trim_last_attention; in the seventh that code read 1.98x, and with trainer.share_prompts and the KV
cache's room 2.11x, 1.96x, 1.95x, 1.83x and 1.81x (2.40-2.61x) in five runs, and `smollm2` 1.72x (1.38x);
in the eighth, the same code on the AVX2 host kind, 1.91x, 2.07x, 2.02x, 1.99x and 1.85x (2.70-3.12x), median
1.99x, and `smollm2` 1.73x (1.51x); in the ninth, the same code on a slower AVX2 host (67-71 GFLOP/s),
1.86x, 1.87x and 1.94x (1.93-2.04x);
`smollm2`
(2026-12-01, one cold iteration before the bench interleaved, 6.6 minutes with SmolLM2's first build)
1.34x (2.15x).
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

from hgpo_cli.train.fast_paths import FAST_PATHS, PLAIN_PATHS  # noqa: E402 (after the sys.path insert)

PHASES = ("rollout", "advantages", "log_probs", "update", "weight_sync")
RUNS = (("plain", list(PLAIN_PATHS)), ("fast", list(FAST_PATHS)))


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


def make_trainer(preset: str, overrides: list[str], out: Path, iterations: int) -> Any:
    from hgpo_cli.config import load_config
    from hgpo_cli.train.trainer import Trainer

    # 6 logical CPUs for Ray: both runs' actors (plain 3, fast 2) live at once and take turns on the cores
    settings = [*overrides, f"trainer.output_dir={out}", f"trainer.iterations={iterations}", "logging.mode=disabled"]
    return Trainer(load_config(preset, [*settings, "ray.num_cpus=6"]))


def run_interleaved(preset: str, overrides: list[str], out: Path, warmup: int, timed: int) -> dict[str, Any]:
    """Plain and fast Trainers side by side, iteration i of plain then iteration i of fast, `warmup` + `timed`
    iterations each (startup is not timed). Interleaving puts both runs' iterations of one index in the
    same minute, so a change of this shared machine's speed (it varies by a third within minutes) falls on
    both. Returns, per run, the summed time/* metrics of the timed iterations and the step records of its
    first and of its timed iterations."""
    runs = {name: make_trainer(preset, [*overrides, *paths], out / name, warmup + timed) for name, paths in RUNS}
    stats: dict[str, Any] = {name: {"time": {}, "first": None, "timed": [], "metrics": {}} for name in runs}
    try:
        for it in range(warmup + timed):
            for name, trainer in runs.items():
                metrics, result, _ = trainer.iteration(it)
                run = stats[name]
                run["first"] = result.records if run["first"] is None else run["first"]
                run["metrics"] = metrics
                if it >= warmup:
                    run["timed"].extend(result.records)
                    for key, value in metrics.items():
                        if key.startswith("time/"):
                            run["time"][key] = run["time"].get(key, 0.0) + float(value)
    finally:
        for trainer in runs.values():
            trainer.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument(
        "--warmup", type=int, default=1, help="iterations run before the timed ones (0: time from the first, cold)"
    )
    parser.add_argument("--timed", type=int, default=3, help="iterations timed per run (summed)")
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
        stats = run_interleaved(args.preset, args.overrides, Path(tmp), args.warmup, args.timed)
    ray.shutdown()
    # the machine's throughput: the better of the measurements before and after (a loaded machine lowers it)
    gflops = max(gflops, matmul_gflops())
    print(f"fp32 matmul for the floor (best before / after): {gflops:.1f} GFLOP/s")
    plain, fast = stats["plain"], stats["fast"]
    # the first iterations start from the same weights: the same tokens must come out of both
    same = [r.extra["response_ids"] for r in plain["first"]] == [r.extra["response_ids"] for r in fast["first"]]
    body, head = matmul_params(model_path)
    flops = floor_flops(fast["timed"], body, head)
    tokens = sum(len(r.extra["prompt_ids"]) + len(r.extra["response_ids"]) for r in fast["timed"])
    cold = " (from the cold first)" if args.warmup == 0 else ""
    print(
        f"timed: iterations {args.warmup + 1} to {args.warmup + args.timed}{cold} of each run, interleaved, summed; "
        "step samples "
        f"plain {len(plain['timed'])}, fast {len(fast['timed'])} ({tokens} tokens, "
        f"{len(set(map(row_of, fast['timed'])))} distinct (prompt, response) rows)"
    )
    print(
        f"{body / 1e6:.1f}M decoder + {head / 1e6:.1f}M lm_head matmul parameters; same sampled tokens in both "
        f"runs' first iteration: {'yes' if same else 'NO'}"
    )
    last = fast["metrics"]
    print(
        f"fast paths: shared policy {bool(last['batch/shared_policy'])}, "
        f"fused old log-probs {bool(last['batch/fused_old_log_probs'])}, "
        f"old log-probs from the rollout {bool(last['batch/rollout_old_log_probs'])}"
    )
    print(f"{'phase':<12} {'plain s':>9} {'fast s':>9} {'ratio':>7} {'floor s':>9} {'fast/floor':>10}")
    for phase in PHASES:
        before, after = plain["time"].get(f"time/{phase}", 0.0), fast["time"].get(f"time/{phase}", 0.0)
        floor = flops[phase] / (gflops * 1e9)
        ratio = f"{before / after:.2f}x" if after > 1e-3 else "-"
        vs_floor = f"{after / floor:.2f}x" if floor > 0 else "-"
        print(f"{phase:<12} {before:>9.2f} {after:>9.2f} {ratio:>7} {floor:>9.2f} {vs_floor:>10}")
    total_before, total_after = plain["time"]["time/iteration"], fast["time"]["time/iteration"]
    total_floor = sum(flops.values()) / (gflops * 1e9)
    print(
        f"{'iteration':<12} {total_before:>9.2f} {total_after:>9.2f} {total_before / total_after:>6.2f}x "
        f"{total_floor:>9.2f} {total_after / total_floor:>9.2f}x"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"iteration speed-up: {total_before / total_after:.2f}x (floor ratio {total_after / total_floor:.2f}x)")


if __name__ == "__main__":
    main()
