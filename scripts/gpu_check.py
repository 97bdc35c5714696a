"""One prepared GPU run of the paper-scale training path (issue 12), for a lent single-GPU machine; never CI.

On a random-init Qwen2.5-1.5B-shaped model (no download), through hgpo's own PolicyWorker with fp32
master weights and bf16 compute under FSDP2 (world size 1), on one GPU beside an HF engine (bf16):

1. the memory plan of this very setup (`hgpo plan ... --gpus 1 --json`, the GPU's own memory);
2. one rollout batch with the HF engine (and with vLLM where it is installed), tokens/s;
3. old and reference log-probs, tokens/s, and their agreement with the engine's;
4. one PPO update at lr 1e-6, tokens/s, and the fraction of the decoder weights it changed (fp32 master
   weights keep updates that bf16 weights lose: issue 12 measured 1.3% before);
5. the bucketed weight sync into the engine, seconds;
6. peak GPU memory (allocated and reserved) against the plan's prediction.

Every number goes to OUT/gpu_check.json (default results/gpu-check/), written after each phase.

    python3 scripts/gpu_check.py [--out DIR] [--shape qwen2.5-1.5b] [--batch 64] [--new-tokens 128]
    python3 scripts/gpu_check.py --device cpu --shape tiny --batch 4 --prompt-tokens 16 --new-tokens 4   # dry run
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]


def memory_plan(model_dir: Path, args: argparse.Namespace, gpu_mem_gib: float) -> dict:
    """`hgpo plan` of the run this script makes (one rank, HF engine, no offload), as its JSON."""
    overrides = [
        f"model.path={model_dir}",
        "model.dtype=bfloat16",
        "model.master_dtype=float32",
        "model.gradient_checkpointing=true",
        "rollout.engine=hf",
        f"rollout.batch_size={args.batch}",
        f"rollout.max_prompt_tokens={max(16, args.prompt_tokens)}",
        f"rollout.max_response_tokens={args.new_tokens}",
        f"trainer.micro_batch_size={args.micro_batch}",
        f"trainer.ppo_mini_batch_size={args.batch}",
        "trainer.num_workers=1",
        "trainer.fsdp.offload_params=false",
        "trainer.fsdp.offload_optimizer=false",
        "trainer.fsdp.offload_reference=false",
    ]
    cmd = [sys.executable, "-m", "hgpo_cli", "plan", "default", *overrides, "--gpus", "1"]
    cmd += ["--gpu-mem-gib", f"{gpu_mem_gib:.1f}", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": (done.stderr or done.stdout).strip()[-500:], "command": " ".join(cmd)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "results" / "gpu-check"))
    parser.add_argument("--shape", default="qwen2.5-1.5b")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script (with --shape tiny)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"python": platform.python_version(), "args": vars(args)}

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    import numpy as np
    import torch

    report["torch"] = torch.__version__
    device = args.device
    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        report["error"] = "no CUDA device"
        save()
        raise SystemExit("no CUDA device")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    report["gpu"] = torch.cuda.get_device_name(0) if cuda else "cpu dry run"
    gpu_mem_gib = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 80.0
    report["gpu_mem_gib"] = gpu_mem_gib

    from hgpo_cli.engines.base import SamplingSettings
    from hgpo_cli.engines.hf import HFEngine
    from hgpo_cli.models.embedded import build_random_qwen2
    from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
    from hgpo_cli.train.batch import TrainSample
    from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

    clock = time.perf_counter()
    model_dir = out.parent / f"random-{args.shape}"
    if not (model_dir / "config.json").is_file():
        build_random_qwen2(model_dir, args.shape, dtype="bfloat16")
    report["build_model_s"] = time.perf_counter() - clock

    # ---- 1. the plan of this setup ----
    report["plan"] = memory_plan(model_dir, args, gpu_mem_gib)
    save()

    path = str(model_dir)
    tokenizer = load_tokenizer(path)
    rng = np.random.default_rng(0)
    vocab = len(tokenizer) - 3
    prompts = [rng.integers(0, vocab, size=args.prompt_tokens).tolist() for _ in range(args.batch)]
    settings = SamplingSettings(temperature=1.0, max_new_tokens=args.new_tokens, seed=1)

    # ---- the trainer rank: fp32 master, bf16 compute, FSDP2 world size 1 ----
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock = time.perf_counter()
    trainer = trainer_settings(
        device=device, lr=args.lr, ppo_mini_batch_size=args.batch, micro_batch_size=args.micro_batch
    )
    worker = PolicyWorker(path, model_settings(dtype="bfloat16", gradient_checkpointing=True), trainer)
    report["policy_worker"] = {
        "load_s": time.perf_counter() - clock,
        "sharded": worker.sharded,
        "precision": worker.precision.names(),
        "master_param_dtypes": sorted({str(p.dtype) for p in worker.params}),
    }
    save()

    # ---- 2. rollouts (the engine stays resident beside the trainer, as in hgpo train) ----
    engine = HFEngine(load_causal_lm(path, dtype="bfloat16"), tokenizer, batch_size=args.batch, device=device)
    engine.generate(prompts[:2], SamplingSettings(temperature=1.0, max_new_tokens=4, seed=0))  # warm-up
    sync()
    clock = time.perf_counter()
    gens = engine.generate(prompts, settings)
    sync()
    seconds = time.perf_counter() - clock
    new_tokens = sum(len(g.token_ids) for g in gens)
    report["rollout_hf"] = {"new_tokens": new_tokens, "seconds": seconds, "tokens_per_s": new_tokens / seconds}
    save()
    try:
        from hgpo_cli.engines.vllm_engine import vllm_available

        report["rollout_vllm"] = "installed, not run beside the trainer" if vllm_available() else "not installed"
    except Exception as err:  # noqa: BLE001 - the check records what failed and goes on
        report["rollout_vllm"] = f"unavailable: {type(err).__name__}: {err}"

    # ---- 3. old and reference log-probs ----
    samples = [
        TrainSample(p, g.token_ids or [tokenizer.eos_token_id], advantage=float(rng.normal()))
        for p, g in zip(prompts, gens, strict=True)
    ]
    tokens = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    clock = time.perf_counter()
    lps = worker.log_probs(samples)
    sync()
    seconds = time.perf_counter() - clock
    diffs = [abs(a - b) for g, lp in zip(gens, lps, strict=True) for a, b in zip(g.log_probs, lp["old"], strict=False)]
    report["log_probs"] = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "engine_vs_trainer_max_abs_diff": max(diffs) if diffs else None,
        "engine_vs_trainer_mean_abs_diff": float(np.mean(diffs)) if diffs else None,
    }
    for sample, lp in zip(samples, lps, strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    save()

    # ---- 4. one PPO update at lr 1e-6, and what it changed ----
    from hgpo_cli.train.weight_sync import full_state_items

    before = {k: v for k, v in full_state_items(worker.model) if ".layers." in k}
    clock = time.perf_counter()
    stats = worker.update(samples, seed=0)
    sync()
    seconds = time.perf_counter() - clock
    changed = total = 0
    for key, value in full_state_items(worker.model):
        if key in before:
            changed += int((value != before[key]).sum())
            total += value.numel()
    del before
    report["update"] = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "decoder_weights_changed_fraction": changed / max(1, total),
        "stats": {k: float(v) for k, v in stats.items()},
    }
    save()

    # ---- 5. the bucketed weight sync into the engine ----
    clock = time.perf_counter()
    worker.start_weight_sync()
    buckets = 0
    while bucket := worker.next_weight_bucket():
        engine.load_weights(bucket, partial=True)
        buckets += 1
    sync()
    report["weight_sync"] = {"seconds": time.perf_counter() - clock, "buckets": buckets}

    # ---- 6. peak memory against the plan ----
    if cuda:
        peak_alloc = torch.cuda.max_memory_allocated() / 2**30
        peak_reserved = torch.cuda.max_memory_reserved() / 2**30
        planned = report["plan"].get("total_gib")
        report["memory"] = {
            "peak_allocated_gib": peak_alloc,
            "peak_reserved_gib": peak_reserved,
            "plan_total_gib": planned,
            "plan_phases_gib": report["plan"].get("phases_gib"),
            # the plan counts 1 GiB per process (CUDA context, allocator slack) that torch does not report
            "reserved_over_plan": peak_reserved / planned if planned else None,
        }
    save()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
