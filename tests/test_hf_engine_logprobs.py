"""The HF engine's log-probs are those of the sampling temperature, the same numbers the trainer computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine, _log_prob_recorder
from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.train.batch import TrainSample
from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

PROMPTS = ["go to the fridge 1", "open the drawer 2 and look", "take the apple", "heat the mug with microwave 1"]


def _prompts(tok) -> list[list[int]]:
    return [
        list(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_dict=False))
        for p in PROMPTS
    ]


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_engine_and_trainer_agree_at_temperature_0_7(tiny_model_dir, top_p: float) -> None:
    path = str(tiny_model_dir)
    tok = load_tokenizer(path)
    engine = HFEngine(load_causal_lm(path, dtype="float32"), tok, batch_size=4)
    prompts = _prompts(tok)
    gens = engine.generate(prompts, SamplingSettings(temperature=0.7, top_p=top_p, max_new_tokens=8, seed=5))
    assert all(g.token_ids for g in gens)
    samples = [TrainSample(p, g.token_ids) for p, g in zip(prompts, gens, strict=True)]
    cfg = trainer_settings(device="cpu", use_kl_loss=False, micro_batch_size=4)
    at_07 = PolicyWorker(path, model_settings(dtype="float32"), cfg, temperature=0.7).log_probs(samples)
    at_1 = PolicyWorker(path, model_settings(dtype="float32"), cfg, temperature=1.0).log_probs(samples)
    moved = 0.0
    for gen, lp07, lp1 in zip(gens, at_07, at_1, strict=True):
        assert len(gen.log_probs) == len(gen.token_ids)
        np.testing.assert_allclose(gen.log_probs, lp07["old"], atol=1e-5, rtol=0)
        moved = max(moved, float(np.max(np.abs(np.array(gen.log_probs) - np.array(lp1["old"])))))
    assert moved > 1e-3  # temperature 1 would give other numbers: the check above can fail


def test_recorder_gathers_each_step_by_hand() -> None:
    # two steps over a vocabulary of 3, temperature 0.5: log-probs of log_softmax(scores / 0.5) at the tokens
    recorder = _log_prob_recorder(0.5)
    s0 = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    s1 = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    prompt = torch.tensor([[9], [9]])
    assert recorder(prompt, s0) is s0  # scores pass through unchanged
    recorder(torch.cat([prompt, torch.tensor([[2], [0]])], dim=1), s1)
    got = recorder.finish(torch.tensor([[2, 0], [0, 1]]))
    expected = torch.stack(
        [
            torch.log_softmax(s0 / 0.5, -1)[[0, 1], [2, 0]],
            torch.log_softmax(s1 / 0.5, -1)[[0, 1], [0, 1]],
        ],
        dim=1,
    )
    torch.testing.assert_close(got, expected)
    # by hand, row 1 step 0: uniform over 3 -> log(1/3)
    assert float(got[1, 0]) == pytest.approx(np.log(1 / 3))
