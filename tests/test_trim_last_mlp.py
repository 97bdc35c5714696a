"""model.trim_last_mlp: the last layer's MLP runs at the kept positions only, and nothing the callers use
changes (logits, gradients, the KV cache, sampled tokens), while the MLP really sees fewer positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine, shared_prefill
from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.models.trim import last_mlp, trim_last_mlp
from hgpo_cli.train.batch import TrainSample, collate, response_logits, response_targets
from hgpo_cli.train.loss import token_log_probs


def samples_of(tokenizer, n: int) -> list[TrainSample]:
    """n step samples of different prompt and response lengths (left padding in a batch)."""
    out = []
    for i in range(n):
        prompt = tokenizer.encode(" ".join(["go to shelf", str(i + 1)] * (2 + 2 * i)))
        response = tokenizer.encode(" ".join(["take", "mug", str(i)] * (1 + i % 3)))
        out.append(TrainSample(prompt_ids=prompt, response_ids=response, advantage=1.0))
    return out


def mlp_widths(model) -> list[int]:
    """Records the sequence length the last MLP is called with (a hook registered after the trim's)."""
    seen: list[int] = []
    last_mlp(model).register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    return seen


def response_gradients(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(B, R) response log-probs and each parameter's gradient of their masked sum (train mode)."""
    model.train()
    model.zero_grad()
    log_probs = token_log_probs(response_logits(model, batch), response_targets(batch))
    (log_probs * batch.response_mask).sum().backward()
    return log_probs.detach(), [p.grad.clone() for p in model.parameters()]


def assert_same_gradients(plain: list[torch.Tensor], trimmed: list[torch.Tensor]) -> None:
    for a, b in zip(plain, trimmed, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


@pytest.fixture()
def pair(tiny_model_dir):
    """The same weights twice: plain, and with the trim installed."""
    path = str(tiny_model_dir)
    plain = load_causal_lm(path, dtype="float32")
    trimmed = load_causal_lm(path, dtype="float32", trim_last_mlp=True)
    trimmed.load_state_dict(plain.state_dict())
    return plain, trimmed, load_tokenizer(path)


def test_response_log_probs_and_gradients_are_unchanged_and_the_mlp_sees_the_response_only(pair):
    plain, trimmed, tokenizer = pair
    batch = collate(samples_of(tokenizer, 4), tokenizer.pad_token_id)
    widths = mlp_widths(trimmed)
    (lp_plain, g_plain), (lp_trim, g_trim) = response_gradients(plain, batch), response_gradients(trimmed, batch)
    torch.testing.assert_close(lp_trim, lp_plain, rtol=0, atol=1e-6)
    assert_same_gradients(g_plain, g_trim)
    # the MLP ran on the kept positions (response width + 1), not the whole padded sequence
    assert widths == [batch.response_width + 1] and batch.input_ids.shape[1] > batch.response_width + 1


def test_a_full_forward_and_a_hidden_states_forward_are_not_trimmed(pair):
    plain, trimmed, tokenizer = pair
    ids = torch.tensor([samples_of(tokenizer, 1)[0].prompt_ids])
    widths = mlp_widths(trimmed)
    with torch.no_grad():
        torch.testing.assert_close(trimmed(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=0, atol=0)
        hidden = trimmed(input_ids=ids, logits_to_keep=1, output_hidden_states=True).hidden_states[-1]
        torch.testing.assert_close(
            hidden, plain(input_ids=ids, logits_to_keep=1, output_hidden_states=True).hidden_states[-1]
        )
    assert widths == [ids.shape[1], ids.shape[1]]


def test_prefill_cache_and_sampled_tokens_are_unchanged(pair):
    """The KV cache a shared prefill builds and what `generate` samples (its prefill keeps one position)."""
    plain, trimmed, tokenizer = pair
    prompts = [s.prompt_ids for s in samples_of(tokenizer, 3)]
    prompts = [prompts[i] for i in (0, 0, 1, 2, 2)]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    keys = [tuple(p) for p in prompts]
    with torch.no_grad():
        caches = [shared_prefill(model, ids, mask, keys) for model in (plain, trimmed)]
    layers = [next(iter(c.values())).layers for c in caches]
    for a, b in zip(*layers, strict=True):
        torch.testing.assert_close(b.keys, a.keys, rtol=0, atol=0)
        torch.testing.assert_close(b.values, a.values, rtol=0, atol=0)
    widths = mlp_widths(trimmed)
    settings = SamplingSettings(temperature=1.0, max_new_tokens=6, seed=3)
    runs = [HFEngine(model, tokenizer, batch_size=8).generate(prompts, settings) for model in (plain, trimmed)]
    assert [g.token_ids for g in runs[0]] == [g.token_ids for g in runs[1]]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_allclose(b.log_probs, a.log_probs, rtol=0, atol=1e-6)
    assert widths[0] == 1  # generate's prefill (logits_to_keep=1) ran the last MLP on one position


def test_installing_finds_the_last_layer_and_is_idempotent(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir), dtype="float32")
    assert last_mlp(model) is model.model.layers[-1].mlp
    hooks = len(last_mlp(model)._forward_pre_hooks)
    assert trim_last_mlp(model) and trim_last_mlp(model)
    assert len(last_mlp(model)._forward_pre_hooks) == hooks + 1
    assert not trim_last_mlp(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_gradients_are_unchanged_under_gradient_checkpointing(tiny_model_dir):
    """The GPU presets recompute each layer in the backward pass: the recomputed last MLP is trimmed the
    same way, and the gradients stay those of the plain model."""
    path = str(tiny_model_dir)
    plain = load_causal_lm(path, dtype="float32", gradient_checkpointing=True)
    trimmed = load_causal_lm(path, dtype="float32", gradient_checkpointing=True, trim_last_mlp=True)
    trimmed.load_state_dict(plain.state_dict())
    batch = collate(samples_of(load_tokenizer(path), 3), 0)
    widths = mlp_widths(trimmed)
    assert_same_gradients(response_gradients(plain, batch)[1], response_gradients(trimmed, batch)[1])
    assert widths == [batch.response_width + 1] * 2  # the forward, then its recomputation in the backward
