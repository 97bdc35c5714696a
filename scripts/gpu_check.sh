#!/usr/bin/env bash
# One short prepared run on a machine with one GPU (never in CI): HF (and vLLM if installed) rollouts and one
# PPO update (fp32 master, bf16 compute, FSDP2 world size 1) on a random Qwen2.5-1.5B shape, against the memory plan.
# Everything goes to $OUT/gpu_check.json (default results/gpu-check/).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-results/gpu-check}"
export TOKENIZERS_PARALLELISM=false HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/gpu_check.py --out "$out" "$@"
