"""trainer.share_prompts: samples with the same prompt share one packed forward row (hgpo_cli.train.shared_prompts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.train.batch import TrainSample, collate, response_logits, response_targets
from hgpo_cli.train.loss import entropy_from_logits, token_log_probs
from hgpo_cli.train.minibatch import plan_update
from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings
from hgpo_cli.train.shared_prompts import pack_by_prompt, packed_response_logits, prompt_micro_batches

T, F = True, False


def test_a_prompt_is_laid_out_once_with_each_distinct_response_after_it():
    """Hand-laid rows: [1 2 3 | 4 5 | 6] for prompt (1 2 3) with responses (4 5), (6) and a copy of (4 5);
    [pad | 7 8 | 9 9 9] for prompt (7 8). Positions restart after the prompt for every response; a response
    sees the prompt and its own earlier tokens; every logit needed is in the last 4 columns."""
    a = TrainSample([1, 2, 3], [4, 5])
    samples = [a, TrainSample([1, 2, 3], [6]), TrainSample([7, 8], [9, 9, 9]), TrainSample([1, 2, 3], [4, 5])]
    packed = pack_by_prompt(samples, pad_id=0)
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6], [0, 7, 8, 9, 9, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 4, 3], [1, 0, 1, 2, 3, 4]]
    assert packed.keep == 4 and packed.response_width == 3
    mask = packed.attention_mask[:, 0].tolist()
    assert mask[0] == [
        [T, F, F, F, F, F],
        [T, T, F, F, F, F],
        [T, T, T, F, F, F],
        [T, T, T, T, F, F],  # response (4 5): the prompt and itself
        [T, T, T, T, T, F],
        [T, T, T, F, F, T],  # response (6): the prompt and itself, not (4 5)
    ]
    assert mask[1] == [
        [T, F, F, F, F, F],  # the padding sees itself only
        [F, T, F, F, F, F],
        [F, T, T, F, F, F],
        [F, T, T, T, F, F],
        [F, T, T, T, T, F],
        [F, T, T, T, T, T],
    ]
    # kept columns 0..3 are packed columns 2..5; token t of a response is predicted one column before it
    assert packed.rows.tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 0]]
    assert packed.columns.tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 2], [0, 0, 1]]
    assert packed.targets.tolist() == [[0, 4, 5], [0, 0, 6], [9, 9, 9], [0, 4, 5]]


def samples_sharing_prompts(tokenizer) -> list[TrainSample]:
    """Three prompts of different lengths: one answered 4 times (two replies alike), one twice, one once."""
    prompts = [tokenizer.encode(" ".join(["go to shelf", str(i + 1)] * (2 + 3 * i))) for i in range(3)]
    replies = [tokenizer.encode(" ".join(["take", "mug", str(j)] * (1 + j % 3))) for j in range(5)]
    pairs = [(0, 0), (1, 1), (0, 2), (2, 3), (0, 0), (1, 4), (0, 4)]
    return [TrainSample(prompts[p], replies[r], advantage=0.5 - 0.2 * k) for k, (p, r) in enumerate(pairs)]


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("trim", [False, True])
def test_packed_rows_give_the_log_probs_entropies_and_gradients_of_one_row_per_sample(
    tiny_model_dir, implementation, trim
):
    """The same numbers (to float rounding) as one left-padded row per sample, with and without the
    last-layer trims, under sdpa (a boolean mask) and eager (an additive one); 3 rows instead of 7."""
    path = str(tiny_model_dir)
    model = load_causal_lm(path, dtype="float32", trim_last_mlp=trim, trim_last_attention=trim)
    model.set_attn_implementation(implementation)
    model.train()
    samples = samples_sharing_prompts(load_tokenizer(path))
    batch, packed = collate(samples, 0), pack_by_prompt(samples, 0)
    assert packed.input_ids.shape[0] == 3 and packed.input_ids.shape[1] < batch.input_ids.shape[1] + 12
    weights = torch.randn(batch.response_mask.shape, generator=torch.Generator().manual_seed(0))

    def run(logits_of) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits, targets = logits_of()
        log_probs, entropy = token_log_probs(logits, targets), entropy_from_logits(logits)
        ((log_probs + 0.1 * entropy) * weights * batch.response_mask).sum().backward()
        return log_probs.detach(), entropy.detach(), [p.grad.clone() for p in model.parameters()]

    plain = run(lambda: (response_logits(model, batch, 0.7), response_targets(batch)))
    shared = run(lambda: (packed_response_logits(model, packed, 0.7, implementation), packed.targets))
    mask = batch.response_mask.bool()
    assert bool((packed.targets[mask] == response_targets(batch)[mask]).all())
    torch.testing.assert_close(shared[0][mask], plain[0][mask], rtol=0, atol=2e-6)
    torch.testing.assert_close(shared[1][mask], plain[1][mask], rtol=0, atol=2e-6)
    assert float(plain[0][mask].abs().max()) > 1.0  # real log-probs, not a degenerate model
    moved, worst = 0, 0.0
    for a, b in zip(plain[2], shared[2], strict=True):
        # each tensor against its own scale: sums of the same terms in another order
        worst = max(worst, float((b - a).abs().max() / a.abs().max().clamp(min=1e-12)))
        moved += int(a.abs().max() > 1e-4)
    print(f"largest gradient difference relative to its tensor's largest entry: {worst:.1e}")
    assert worst < 1e-5 and moved > len(plain[2]) // 2


def test_wrong_masks_would_be_seen():
    """The check above can fail: letting a response see another's tokens changes its log-probs."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    samples = [TrainSample([1, 2, 3, 4], [5, 6, 7]), TrainSample([1, 2, 3, 4], [8, 9])]
    packed = pack_by_prompt(samples, 0)
    with torch.no_grad():
        good = token_log_probs(packed_response_logits(model, packed), packed.targets)
        packed.attention_mask = packed.attention_mask | torch.ones_like(packed.attention_mask).tril()
        leaky = token_log_probs(packed_response_logits(model, packed), packed.targets)
        alone = collate(samples[1:], 0)
        own = token_log_probs(response_logits(model, alone), response_targets(alone))
    torch.testing.assert_close(good[1, 1:], own[0], rtol=0, atol=1e-6)
    assert float((leaky[1, 1:] - own[0]).abs().max()) > 1e-3


def test_micro_batches_hold_whole_prompts_in_order_of_packed_length():
    """prompt_micro_batches and plan_update(prompt_keys=...): a micro-batch holds at most `size` distinct
    prompts and every sample of them; packed lengths ascend; every sample appears once, weights unchanged."""
    prompt_len = {"a": 30, "b": 10, "c": 20, "d": 25}
    prompts = ["a", "b", "a", "c", "a", "d", "b", "c", "a"]
    responses = [3, 2, 3, 4, 5, 1, 6, 4, 3]  # a's replies: 3, 3, 5, 3 -> distinct (3, 5) by key below
    samples = [
        TrainSample([hash(p) % 97] * prompt_len[p], [7 + r] * r) for p, r in zip(prompts, responses, strict=True)
    ]
    micro = prompt_micro_batches(samples, 2, sort=True)
    assert sorted(i for m in micro for i in m) == list(range(len(samples)))
    assert [sorted({prompts[i] for i in m}) for m in micro] == [["b", "c"], ["a", "d"]]  # packed 18, 28 | 26, 38
    resp, total = responses, [prompt_len[p] + r for p, r in zip(prompts, responses, strict=True)]
    common = dict(mini_batch_size=9, micro_batch_size=2, loss_scale="global", shuffle=False, pad="none")
    plain = plan_update(resp, total, **common)
    keys = [(p, r) for p, r in zip(prompts, responses, strict=True)]
    shared = plan_update(resp, total, sort_by_length=True, row_keys=keys, prompt_keys=prompts, **common)
    micros = shared.steps[0][0]
    assert [sorted({prompts[i] for i in m.indices}) for m in micros] == [["b", "c"], ["a", "d"]]
    assert sorted(i for m in micros for i in m.indices) == list(range(9))
    assert sum(m.weight for m in micros) == pytest.approx(sum(m.weight for m in plain.steps[0][0])) == pytest.approx(1)
    for m in micros:
        assert m.weight == pytest.approx(sum(resp[i] for i in m.indices) / sum(resp))
    # under loss_scale=micro the micro-batch make-up is part of the loss: prompts change nothing
    micro_scale = {**common, "loss_scale": "micro"}
    assert (
        plan_update(resp, total, prompt_keys=prompts, **micro_scale).steps
        == plan_update(resp, total, **micro_scale).steps
    )


def test_the_worker_passes_and_update_match_the_plain_ones_with_fewer_rows(tiny_model_dir):
    """A policy worker with trainer.share_prompts gives the same old and reference log-probs and, after an
    update of several optimizer steps, the same weights as one without, running one row per prompt."""
    path = str(tiny_model_dir)
    samples = samples_sharing_prompts(load_tokenizer(path)) * 2
    results = {}
    for share in (False, True):
        cfg = trainer_settings(
            device="cpu", lr=1e-3, weight_decay=0.0, ppo_mini_batch_size=7, micro_batch_size=2,
            loss_scale="global", share_prompts=share, shuffle=True,
        )  # fmt: skip
        worker = PolicyWorker(path, model_settings(), cfg, temperature=0.7)
        rows: list[int] = []
        for module in (worker.model, worker.reference):
            module.register_forward_hook(
                lambda _m, _a, kw, _o, seen=rows: seen.append(kw["input_ids"].shape[0]), with_kwargs=True
            )
        start = worker.parameter_vector().clone()
        answers = worker.log_probs(samples, True)
        batch = [
            TrainSample(s.prompt_ids, s.response_ids, s.advantage, [x + 0.02 * (k % 3) for x in a["old"]], a["ref"])
            for k, (s, a) in enumerate(zip(samples, answers, strict=True))
        ]
        pass_rows = sum(rows)
        stats = worker.update(batch, seed=4)
        results[share] = (answers, stats, worker.parameter_vector(), pass_rows, sum(rows) - pass_rows, start)
    plain, shared = results[False], results[True]
    assert shared[3] == 2 * 3 and plain[3] == 2 * 6  # policy + reference: 3 prompts vs 6 distinct rows
    assert shared[4] < plain[4]
    for a, b in zip(plain[0], shared[0], strict=True):
        np.testing.assert_allclose(b["old"], a["old"], rtol=0, atol=2e-6)
        np.testing.assert_allclose(b["ref"], a["ref"], rtol=0, atol=2e-6)
    for key in ("actor/pg_loss", "actor/kl", "actor/grad_norm", "actor/ratio_mean"):
        assert abs(plain[1][key] - shared[1][key]) <= 1e-5 * max(1.0, abs(plain[1][key])), key
    assert float((plain[2] - plain[5]).abs().max()) > 1e-3  # the update moved the weights
    # AdamW divides by the root of the squared gradients: an entry whose gradients are near 0 turns rounding
    # into a step of up to lr; almost every weight lands within 1e-6
    torch.testing.assert_close(shared[2], plain[2], rtol=0, atol=1e-4)
    assert float(((shared[2] - plain[2]).abs() > 1e-6).float().mean()) < 1e-3
