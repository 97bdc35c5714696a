"""One short GPU check of the training path, run when a GPU machine is lent (never in CI).

Builds a random-init Qwen2.5-1.5B-shaped model (no download), then times on the GPU:
HF-transformers rollouts (and vLLM rollouts when vLLM is importable), the engine/trainer log-prob
agreement, old/ref log-probs and one PPO+KL update through hgpo's own PolicyWorker (bf16, gradient
checkpointing). Writes every number to OUT/gpu_check.json.

    python3 scripts/gpu_check.py --out DIR [--shape qwen2.5-1.5b] [--batch 64] [--new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_check_out")
    parser.add_argument("--shape", default="qwen2.5-1.5b")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script (with --shape tiny)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"python": platform.python_version()}

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    import numpy as np
    import torch

    report["torch"] = torch.__version__
    report["cuda"] = torch.cuda.is_available()
    device = args.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda" and not torch.cuda.is_available():
        report["error"] = "no CUDA device"
        save()
        raise SystemExit("no CUDA device")
    report["gpu"] = torch.cuda.get_device_name(0) if device == "cuda" else "cpu dry run"
    dtype = "bfloat16" if device == "cuda" else "float32"

    from hgpo_cli.engines.base import SamplingSettings
    from hgpo_cli.engines.hf import HFEngine
    from hgpo_cli.models.embedded import build_random_qwen2
    from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
    from hgpo_cli.train.batch import TrainSample
    from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

    clock = time.perf_counter()
    model_dir = out.parent / f"random-{args.shape}"
    if not (model_dir / "config.json").is_file():
        build_random_qwen2(model_dir, args.shape, dtype=dtype)
    report["build_model_s"] = time.perf_counter() - clock
    path = str(model_dir)
    tokenizer = load_tokenizer(path)
    rng = np.random.default_rng(0)
    vocab = len(tokenizer) - 3
    prompts = [rng.integers(0, vocab, size=args.prompt_tokens).tolist() for _ in range(args.batch)]
    settings = SamplingSettings(temperature=1.0, max_new_tokens=args.new_tokens, seed=1)

    # ---- HF rollouts ----
    engine = HFEngine(load_causal_lm(path, dtype=dtype), tokenizer, batch_size=args.batch, device=device)
    engine.generate(prompts[:4], SamplingSettings(temperature=1.0, max_new_tokens=8, seed=0))  # warm-up
    sync()
    clock = time.perf_counter()
    gens = engine.generate(prompts, settings)
    sync()
    seconds = time.perf_counter() - clock
    new_tokens = sum(len(g.token_ids) for g in gens)
    report["hf_generate"] = {
        "batch": args.batch,
        "new_tokens": new_tokens,
        "seconds": seconds,
        "tokens_per_s": new_tokens / seconds,
    }
    save()

    # ---- vLLM rollouts (when installed) ----
    try:
        from hgpo_cli.engines.vllm_engine import VLLMEngine, vllm_available

        if vllm_available() and device == "cuda":
            vllm_engine = VLLMEngine(path, dtype="bfloat16", max_model_len=2048, gpu_memory_utilization=0.3)
            vllm_engine.generate(prompts[:4], SamplingSettings(temperature=1.0, max_new_tokens=8, seed=0))
            clock = time.perf_counter()
            vgens = vllm_engine.generate(prompts, settings)
            seconds = time.perf_counter() - clock
            vtokens = sum(len(g.token_ids) for g in vgens)
            report["vllm_generate"] = {"new_tokens": vtokens, "seconds": seconds, "tokens_per_s": vtokens / seconds}
        else:
            report["vllm_generate"] = "vllm not installed on this machine"
    except Exception as err:  # noqa: BLE001 - the check records what failed and goes on
        report["vllm_generate"] = f"failed: {type(err).__name__}: {err}"
    save()
    del engine
    if device == "cuda":
        torch.cuda.empty_cache()

    # ---- one training iteration through PolicyWorker ----
    trainer = trainer_settings(device=device, ppo_mini_batch_size=args.batch, micro_batch_size=8)
    model_cfg = model_settings(dtype=dtype, gradient_checkpointing=True)
    worker = PolicyWorker(path, model_cfg, trainer)
    samples = [
        TrainSample(p, g.token_ids or [tokenizer.eos_token_id], advantage=float(rng.normal()))
        for p, g in zip(prompts, gens, strict=True)
    ]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = time.perf_counter()
    lps = worker.log_probs(samples)
    sync()
    report["log_probs_s"] = time.perf_counter() - clock
    diffs = [abs(a - b) for g, lp in zip(gens, lps, strict=True) for a, b in zip(g.log_probs, lp["old"], strict=True)]
    report["engine_vs_trainer_logprob_max_abs_diff_bf16"] = max(diffs) if diffs else None
    for sample, lp in zip(samples, lps, strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    clock = time.perf_counter()
    stats = worker.update(samples, seed=0)
    sync()
    seconds = time.perf_counter() - clock
    tokens = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    report["update"] = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "stats": {k: float(v) for k, v in stats.items()},
    }
    clock = time.perf_counter()
    state = worker.policy_state_dict()
    report["state_dict_to_cpu_s"] = time.perf_counter() - clock
    report["parameters"] = sum(v.numel() for v in state.values())
    save()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
