#!/usr/bin/env bash
# One short prepared run on a machine with one GPU (never in CI): HF (and vLLM if installed) rollouts and one
# PPO+KL training iteration on a random-init Qwen2.5-1.5B-shaped model. Timings go to $OUT (or ./gpu_check_out).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
export TOKENIZERS_PARALLELISM=false HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/gpu_check.py --out "$out" "$@"
