"""model.trim_last_attention: a forward without a KV cache that keeps the logits of its last n positions runs
the whole last decoder layer on those n positions (their queries attend to every position's keys), and
what the callers use does not change: logits, log-probs, gradients (to float rounding), a KV cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine, shared_prefill
from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.models.trim import attention_trimmable, last_layer, trim_last_attention
from hgpo_cli.train.batch import collate, response_logits, response_targets
from hgpo_cli.train.loss import token_log_probs
from tests.test_trim_last_mlp import response_gradients, samples_of


def assert_same_gradients(plain: list[torch.Tensor], trimmed: list[torch.Tensor]) -> None:
    """Equal to float rounding: each tensor within 1e-5 of the plain one in relative L2 norm (the trimmed
    backward sums the same terms in other orders; single elements move by up to 4e-7). A wrong trim (other
    mask rows, other positions' keys) moves them by percents."""
    assert len(plain) == len(trimmed)
    for a, b in zip(plain, trimmed, strict=True):
        assert float((b - a).norm()) <= 1e-5 * float(a.norm()) + 1e-9


def query_widths(model) -> list[int]:
    """The number of query positions the last layer's attention is called with (a hook after the trim's)."""
    seen: list[int] = []

    def record(_module, args, kwargs) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        seen.append(hidden.shape[1])

    last_layer(model).self_attn.register_forward_pre_hook(record, with_kwargs=True)
    return seen


def trimmed_pair(path: str, **options) -> tuple:
    """The same weights twice: plain, and with the attention trim installed."""
    plain = load_causal_lm(path, dtype="float32", **options)
    trimmed = load_causal_lm(path, dtype="float32", trim_last_attention=True, **options)
    trimmed.load_state_dict(plain.state_dict())
    return plain, trimmed


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padded", [True, False])
def test_logits_and_gradients_are_unchanged_and_the_attention_runs_the_response_only(
    tiny_model_dir, implementation, padded
):
    """Padded batches (a 4D mask, its last rows kept) and unpadded ones (no mask: the causal rectangle)."""
    path = str(tiny_model_dir)
    plain, trimmed = trimmed_pair(path)
    for model in (plain, trimmed):
        model.set_attn_implementation(implementation)
    samples = samples_of(load_tokenizer(path), 4)
    if not padded:
        samples = [samples[1]] * 3
    batch = collate(samples, 0)
    assert bool((batch.attention_mask == 0).any()) == padded
    widths = query_widths(trimmed)
    (lp_plain, g_plain), (lp_trim, g_trim) = response_gradients(plain, batch), response_gradients(trimmed, batch)
    torch.testing.assert_close(lp_trim, lp_plain, rtol=0, atol=1e-6)
    assert_same_gradients(g_plain, g_trim)
    assert widths == [batch.response_width + 1] and batch.input_ids.shape[1] > batch.response_width + 1
    with torch.no_grad():  # the logits themselves: the same products row by row
        kept = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "use_cache": False}
        kept |= {"position_ids": batch.position_ids, "logits_to_keep": batch.response_width + 1}
        torch.testing.assert_close(trimmed(**kept).logits, plain(**kept).logits, rtol=0, atol=1e-6)


def test_a_prefill_caches_every_position_and_full_or_hidden_states_forwards_are_not_trimmed(tiny_model_dir):
    """A prefill keeps one logit: its last layer runs one query and still caches every position's keys and
    values; generate samples the same tokens; decode steps (one position), full forwards and those asking
    for hidden states run as they are."""
    path = str(tiny_model_dir)
    plain, trimmed = trimmed_pair(path)
    tokenizer = load_tokenizer(path)
    prompts = [s.prompt_ids for s in samples_of(tokenizer, 2)]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    widths = query_widths(trimmed)
    with torch.no_grad():
        caches = [shared_prefill(m, ids, mask, [tuple(p) for p in prompts], chunk=1) for m in (plain, trimmed)]
        # the last layer's keys and values of the positions before come from a matmul over those rows
        # alone: equal to float rounding (2e-7 seen)
        for a, b in zip(*(next(iter(c.values())).layers for c in caches), strict=True):
            torch.testing.assert_close(b.keys, a.keys, rtol=0, atol=1e-6)
            torch.testing.assert_close(b.values, a.values, rtol=0, atol=1e-6)
        assert widths == [1, 1]  # one query per prefill chunk (logits_to_keep=1)
        torch.testing.assert_close(trimmed(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=0, atol=0)
        trimmed(input_ids=ids, logits_to_keep=1, use_cache=False, output_hidden_states=True)
    assert widths[2:] == [width, width]
    settings = SamplingSettings(temperature=1.0, max_new_tokens=6, seed=3)
    runs = [HFEngine(m, tokenizer, batch_size=8).generate(prompts, settings) for m in (plain, trimmed)]
    assert [g.token_ids for g in runs[0]] == [g.token_ids for g in runs[1]]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_allclose(b.log_probs, a.log_probs, rtol=0, atol=1e-6)
    assert widths[4] == 1 and widths[5:] == [1] * (len(widths) - 5)  # generate's prefill, then its decode steps


def test_gradients_are_unchanged_under_gradient_checkpointing_and_lora(tiny_model_dir):
    """The recomputed last layer is trimmed the same way; with LoRA the adapters' gradients are unchanged."""
    path = str(tiny_model_dir)
    batch = collate(samples_of(load_tokenizer(path), 3), 0)
    plain, trimmed = trimmed_pair(path, gradient_checkpointing=True)
    widths = query_widths(trimmed)
    assert_same_gradients(response_gradients(plain, batch)[1], response_gradients(trimmed, batch)[1])
    assert widths == [batch.response_width + 1] * 2  # the forward, then its recomputation in the backward
    torch.manual_seed(0)
    plain = load_causal_lm(path, dtype="float32", lora_rank=4)
    torch.manual_seed(0)
    trimmed = load_causal_lm(path, dtype="float32", lora_rank=4, trim_last_attention=True)
    with torch.no_grad():  # adapters that change the output (peft starts lora_B at zero)
        for (name, a), (_, b) in zip(plain.named_parameters(), trimmed.named_parameters(), strict=True):
            if "lora_B" in name:
                a.normal_(0, 0.1)
                b.copy_(a)
    widths = query_widths(trimmed)
    grads = []
    for model in (plain, trimmed):
        model.train()
        log_probs = token_log_probs(response_logits(model, batch), response_targets(batch))
        (log_probs * batch.response_mask).sum().backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
    assert len(grads[0]) > 0 and all(g is not None for g in grads[0])
    assert_same_gradients(*grads)
    assert widths == [batch.response_width + 1]


def test_only_known_layers_are_trimmed_and_installing_is_idempotent(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir), dtype="float32")
    assert last_layer(model) is model.model.layers[-1]
    hooks = len(last_layer(model)._forward_pre_hooks)
    assert trim_last_attention(model) and trim_last_attention(model)
    assert len(last_layer(model)._forward_pre_hooks) == hooks + 1
    assert not trim_last_attention(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert not attention_trimmable(last_layer(model), "flash_attention_2")
    shape = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    sliding = Qwen2ForCausalLM(Qwen2Config(use_sliding_window=True, sliding_window=8, max_window_layers=0, **shape))
    assert not trim_last_attention(sliding)
    layer = last_layer(model)
    layer.self_attn.q_norm = torch.nn.Identity()  # a Qwen3-style query norm: keys this module cannot compute
    assert not attention_trimmable(layer, "sdpa")
