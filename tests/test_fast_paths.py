"""The fast paths of one machine give the plain paths' numbers (train/fast_paths.py).

- rollout.share_policy: the policy worker's own module as the HF engine gives the same token ids and
  log-probs as a separate engine holding a copy of the weights, before and after an update (the copy then
  receives the new weights by the bucketed sync); the module is back in train mode after sampling.
- trainer.fuse_old_log_probs: a one-step update with the old log-probs taken from its own forward passes
  gives the same loss statistics and the same updated weights as one after a separate old-log-prob pass.
  Exactly equal (bit for bit) when the separate pass sees the same micro-batches as the update (the same
  padded widths, hence the same floating-point sums). With a shuffled update the micro-batches are padded
  differently, the plain path's own ratios are 1 +- 1e-7 instead of 1, and so the comparison is a float
  tolerance: loss statistics to 1e-6 relative, every gradient entry within 1e-6 of the largest, and the
  weights after AdamW's first step within 1e-5 (1% of lr: that step divides each gradient by its own size).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hgpo_cli.config import load_config
from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine
from hgpo_cli.errors import UserError
from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.train.batch import TrainSample
from hgpo_cli.train.fast_paths import (
    active_dropout,
    fuse_mode,
    one_step_update,
    rollout_old_log_probs,
    shares_policy,
)
from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

TEMPERATURE = 0.7


def trainer_cfg(**over) -> dict:
    base = {"device": "cpu", "lr": 1e-3, "weight_decay": 0.0, "ppo_mini_batch_size": 64, "micro_batch_size": 3}
    return trainer_settings(**{**base, **over})


def prompts_of(tokenizer, n: int) -> list[list[int]]:
    words = ["go to the fridge 1", "open the drawer 2", "take the apple", "look", "heat the mug"]
    return [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": words[i % 5] * (1 + i % 3)}], add_generation_prompt=True, return_dict=False
            )
        )
        for i in range(n)
    ]


def as_samples(prompts: list[list[int]], gens: list, seed: int = 0) -> list[TrainSample]:
    rng = np.random.default_rng(seed)
    return [TrainSample(p, g.token_ids, advantage=float(rng.normal())) for p, g in zip(prompts, gens, strict=True)]


def attach(worker: PolicyWorker, samples: list[TrainSample], with_old: bool) -> None:
    for sample, lp in zip(samples, worker.log_probs(samples, with_old), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]


def sync(worker: PolicyWorker, engine: HFEngine) -> None:
    worker.start_weight_sync(bucket_mb=1)
    while bucket := worker.next_weight_bucket():
        engine.load_weights(bucket, partial=True)


def assert_same_generations(a: list, b: list) -> None:
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.log_probs for g in a] == [g.log_probs for g in b]  # exact: same weights, same kernels


def test_shared_module_rolls_out_as_a_separate_engine_before_and_after_an_update(tiny_model_dir):
    path = str(tiny_model_dir)
    worker = PolicyWorker(path, model_settings(), trainer_cfg(), temperature=TEMPERATURE)
    worker.start_engine(batch_size=4)
    assert worker.model.training  # hosting the engine leaves the policy in train mode
    trims = {key: model_settings()[key] for key in ("trim_last_mlp", "trim_last_attention")}  # as the worker's
    plain = HFEngine(load_causal_lm(path, **trims), worker.tokenizer, batch_size=4)
    prompts = prompts_of(worker.tokenizer, 6)
    settings = SamplingSettings(temperature=TEMPERATURE, max_new_tokens=8, seed=5)
    rng_before = torch.get_rng_state()
    shared = worker.generate(prompts, settings)
    assert torch.equal(torch.get_rng_state(), rng_before)  # sampling does not move the worker's RNG
    assert worker.model.training
    first = plain.generate(prompts, settings)
    assert_same_generations(shared, first)
    assert sum(len(g.token_ids) for g in first) > 6

    samples = as_samples(prompts, first)
    attach(worker, samples, with_old=True)
    stats = worker.update(samples, seed=0)
    assert stats["actor/grad_norm"] > 0
    sync(worker, plain)  # the plain path: the copy receives the new weights
    shared = worker.generate(prompts, settings)
    second = plain.generate(prompts, settings)
    assert_same_generations(shared, second)
    # and the update did reach both: the same tokens' log-probs moved
    moved = [g.log_probs != h.log_probs for g, h in zip(first, second, strict=True) if g.token_ids == h.token_ids]
    assert any(moved) or [g.token_ids for g in first] != [g.token_ids for g in second]


def rollout_samples(path: str, n: int = 8) -> list[TrainSample]:
    worker = PolicyWorker(path, model_settings(), trainer_cfg(), temperature=TEMPERATURE)
    worker.start_engine(batch_size=8)
    prompts = prompts_of(worker.tokenizer, n)
    gens = worker.generate(prompts, SamplingSettings(temperature=TEMPERATURE, max_new_tokens=8, seed=1))
    return as_samples(prompts, gens, seed=3)


def one_update(path: str, samples: list[TrainSample], with_old: bool, **over) -> tuple[dict, torch.Tensor, ...]:
    """(stats, the gradient of the step, the weights after it) of a fresh worker's one-step update."""
    worker = PolicyWorker(path, model_settings(), trainer_cfg(**over), temperature=TEMPERATURE)
    batch = [TrainSample(s.prompt_ids, s.response_ids, s.advantage) for s in samples]
    attach(worker, batch, with_old)
    assert all((s.old_log_probs is None) != with_old for s in batch)
    before = worker.parameter_vector()
    stats = worker.update(batch, seed=7)
    after = worker.parameter_vector()
    assert float((after - before).abs().max()) > 5e-4  # the step (lr 1e-3) moved the weights
    grad = torch.cat([p.grad.flatten() for p in worker.params])  # the one step's gradient stays in .grad
    return stats, grad, after


LAYOUTS = {
    # the default preset's: one global token-mean, shuffled, micro-batches cut in order of length; the
    # separate pass (also in order of length) then sees exactly the update's micro-batches
    "default": {"shuffle": True, "loss_scale": "global", "pad_batch": "none", "sort_by_length": True},
    "in order": {"shuffle": False, "sort_by_length": False},
    # the separate pass's micro-batches differ from the update's: other padded widths
    "shuffled": {"shuffle": True, "sort_by_length": False},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fused_old_log_probs_give_the_same_update(tiny_model_dir, layout):
    path = str(tiny_model_dir)
    samples = rollout_samples(path)
    over = LAYOUTS[layout]
    assert one_step_update(samples, trainer_cfg(**over), 1)
    plain_stats, plain_grad, plain = one_update(path, samples, with_old=True, **over)
    fused_stats, fused_grad, fused = one_update(path, samples, with_old=False, **over)
    assert fused_stats["actor/ratio_mean"] == 1.0 and fused_stats["actor/approx_kl"] == 0.0
    if layout != "shuffled":  # the separate pass saw the update's own micro-batches: bit for bit
        assert plain_stats == fused_stats
        assert torch.equal(plain_grad, fused_grad) and torch.equal(plain, fused)
        return
    # shuffled: the plain path's own ratios are 1 +- 1e-7 (the separate pass padded other micro-batches)
    assert abs(plain_stats["actor/ratio_mean"] - 1.0) < 1e-6
    for key in ("actor/pg_loss", "actor/kl", "actor/loss", "actor/grad_norm"):
        assert abs(plain_stats[key] - fused_stats[key]) <= 1e-6 * max(1.0, abs(plain_stats[key])), key
    # gradients: every entry within 1e-6 of the largest one (measured: 1.1e-8 against 0.045)
    scale = float(plain_grad.abs().max())
    assert float((fused_grad - plain_grad).abs().max()) <= 1e-6 * scale
    # weights: AdamW's first step is lr * g / (|g| + 1e-8), which turns gradient noise of 1e-8 on entries
    # whose gradient is itself ~1e-8 into a visible share of lr; 1% of lr bounds it (measured: 2.5e-6)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-2 * 1e-3)


def test_an_update_of_several_steps_needs_the_old_log_probs(tiny_model_dir):
    path = str(tiny_model_dir)
    samples = rollout_samples(path, n=6)
    assert not one_step_update(samples, trainer_cfg(ppo_mini_batch_size=4), 1)
    assert not one_step_update(samples, trainer_cfg(ppo_epochs=2), 1)
    worker = PolicyWorker(path, model_settings(), trainer_cfg(ppo_mini_batch_size=4), temperature=TEMPERATURE)
    attach(worker, samples, with_old=False)
    with pytest.raises(RuntimeError, match="old log-probs missing"):
        worker.update(samples, seed=0)


def several_steps_update(path: str, samples: list[TrainSample], old: list[list[float]]) -> tuple[dict, torch.Tensor]:
    """(stats, weights after) of a fresh worker's update of 3 optimizer steps with these old log-probs (and
    the samples' reference log-probs)."""
    worker = PolicyWorker(path, model_settings(), trainer_cfg(ppo_mini_batch_size=3), temperature=TEMPERATURE)
    pairs = zip(samples, old, strict=True)
    batch = [TrainSample(s.prompt_ids, s.response_ids, s.advantage, o, s.ref_log_probs) for s, o in pairs]
    assert not one_step_update(batch, trainer_cfg(ppo_mini_batch_size=3), 1)
    before = worker.parameter_vector()
    stats = worker.update(batch, seed=7)
    after = worker.parameter_vector()
    assert float((after - before).abs().max()) > 1e-3  # three steps of lr 1e-3 moved the weights
    return stats, after


def sampled(path: str, n: int, seed: int) -> tuple[PolicyWorker, list[list[int]], list]:
    """A fresh worker sampling with its own module: (worker, n prompts, their generations)."""
    worker = PolicyWorker(path, model_settings(), trainer_cfg(), temperature=TEMPERATURE)
    worker.start_engine(batch_size=8)
    prompts = prompts_of(worker.tokenizer, n)
    gens = worker.generate(prompts, SamplingSettings(temperature=TEMPERATURE, max_new_tokens=8, seed=seed))
    return worker, prompts, gens


def test_the_rollouts_log_probs_stand_for_the_old_pass(tiny_model_dir):
    """trainer.old_log_probs_from_rollout: what the shared module recorded while sampling equals the separate
    old-log-prob pass up to float rounding, and an update of several steps on either ends at the same weights."""
    path = str(tiny_model_dir)
    worker, prompts, gens = sampled(path, 8, seed=1)
    samples = as_samples(prompts, gens, seed=3)
    recorded = [g.log_probs for g in gens]
    passes = worker.log_probs(samples, True)
    recomputed = [lp["old"] for lp in passes]
    for sample, lp in zip(samples, passes, strict=True):
        sample.ref_log_probs = lp["ref"]
    assert [len(r) for r in recorded] == [len(r) for r in recomputed] == [len(s.response_ids) for s in samples]
    flat_recorded = np.concatenate([np.asarray(r) for r in recorded])
    flat_recomputed = np.concatenate([np.asarray(r) for r in recomputed])
    assert flat_recorded.size > 8 and float(np.abs(flat_recorded).max()) > 0.1  # real, non-trivial log-probs
    # the same distribution: rounding only (the cached per-token forward sums in another order; measured
    # 9.5e-7 on log-probs down to -7.2)
    np.testing.assert_allclose(flat_recorded, flat_recomputed, rtol=0, atol=1e-5)

    plain_stats, plain = several_steps_update(path, samples, recomputed)
    fast_stats, fast = several_steps_update(path, samples, recorded)
    assert abs(plain_stats["actor/ratio_mean"] - fast_stats["actor/ratio_mean"]) < 1e-5
    for key in ("actor/pg_loss", "actor/kl", "actor/grad_norm"):
        assert abs(plain_stats[key] - fast_stats[key]) <= 1e-4 * max(1.0, abs(plain_stats[key])), key
    # AdamW divides each gradient by its own size, so rounding in near-zero gradients shows up to a share
    # of lr per step; measured 1.3e-5 apart after 3 steps of lr 1e-3, against 1.6e-3 when the old log-probs
    # are off by 0.05
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-4)


def test_dropout_blocks_the_fusion(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir))
    assert active_dropout(model) == []
    model.config.attention_dropout = 0.1
    assert active_dropout(model) == ["config.attention_dropout=0.1"]


def test_the_switches_resolve_from_the_config():
    cfg = load_config("smollm2", ["model.path=embedded:tiny-qwen2"])
    assert shares_policy(cfg)  # hf, one worker, fp32, no LoRA
    for over, reason in [
        ("rollout.engine=vllm", "rollout.engine=vllm"),
        ("trainer.num_workers=2", "trainer.num_workers=2"),
        ("model.lora_rank=8", "model.lora_rank"),
        ("model.dtype=bfloat16", "model.master_dtype=float32"),
    ]:
        other = OmegaConf.merge(cfg, OmegaConf.from_dotlist([over]))
        assert not shares_policy(other)
        forced = OmegaConf.merge(other, OmegaConf.from_dotlist(["rollout.share_policy=true"]))
        with pytest.raises(UserError, match=reason):
            shares_policy(forced)
    assert not shares_policy(OmegaConf.merge(cfg, OmegaConf.from_dotlist(["rollout.share_policy=false"])))
    assert rollout_old_log_probs(cfg)  # auto: whenever the policy is shared
    separate = OmegaConf.merge(cfg, OmegaConf.from_dotlist(["rollout.share_policy=false"]))
    assert not rollout_old_log_probs(separate)
    forced = OmegaConf.merge(separate, OmegaConf.from_dotlist(["trainer.old_log_probs_from_rollout=true"]))
    with pytest.raises(UserError, match="needs the shared policy"):
        rollout_old_log_probs(forced)
    off = OmegaConf.merge(cfg, OmegaConf.from_dotlist(["trainer.old_log_probs_from_rollout=false"]))
    assert not rollout_old_log_probs(off)
    assert fuse_mode(cfg) == "auto"
    big = OmegaConf.merge(cfg, OmegaConf.from_dotlist(["trainer.fuse_old_log_probs=true"]))
    n = int(big.trainer.train_batch_size * big.trainer.group_size * big.env.max_steps)
    fits = OmegaConf.merge(big, OmegaConf.from_dotlist([f"trainer.ppo_mini_batch_size={n}"]))
    assert fuse_mode(fits) == "true"
    short = OmegaConf.merge(big, OmegaConf.from_dotlist([f"trainer.ppo_mini_batch_size={n - 1}"]))
    with pytest.raises(UserError, match="one optimizer step"):
        fuse_mode(short)


def test_sort_by_length_cuts_global_micro_batches_of_similar_lengths():
    from hgpo_cli.train.minibatch import plan_update

    resp = [4, 4, 4, 4, 4, 4]
    total = [10, 30, 11, 31, 12, 32]  # a trajectory's steps grow: short and long prompts alternate
    kwargs = {"mini_batch_size": 6, "micro_batch_size": 3, "shuffle": False, "pad": "none"}
    plain = plan_update(resp, total, loss_scale="global", **kwargs)
    packed = plan_update(resp, total, loss_scale="global", sort_by_length=True, **kwargs)
    assert [m.indices for m in plain.steps[0][0]] == [(0, 1, 2), (3, 4, 5)]  # padded to 30 and 32
    assert [m.indices for m in packed.steps[0][0]] == [(0, 2, 4), (1, 3, 5)]  # padded to 12 and 32
    # the same samples and the same token weights (12 of 24 tokens each): the same loss
    assert [m.weight for m in packed.steps[0][0]] == [0.5, 0.5]
    # under loss_scale=micro a micro-batch's make-up changes the loss: the plan is left alone
    micro = plan_update(resp, total, loss_scale="micro", sort_by_length=True, **kwargs)
    assert [m.indices for m in micro.steps[0][0]] == [(0, 1, 2), (3, 4, 5)]


# ---------------------------------------------------------------------------------- trainer.dedup_samples
def test_plan_update_gives_each_distinct_row_one_place_with_all_its_copies():
    """row_keys under loss_scale=global: every sample still appears once per epoch with the same total weight,
    and a micro-batch holds at most micro_batch_size distinct rows, all copies of a row in one micro-batch."""
    from hgpo_cli.train.minibatch import plan_update

    keys = ["a", "b", "a", "c", "a", "d", "b", "e", "f", "a", "g", "h"]
    resp = [3, 2, 3, 4, 3, 1, 2, 5, 2, 3, 1, 2]
    total = [10 + r for r in resp]
    common = dict(mini_batch_size=6, micro_batch_size=2, loss_scale="global", shuffle=True, pad="none", seed=5)
    plain = plan_update(resp, total, **common)
    dedup = plan_update(resp, total, row_keys=keys, **common)
    assert len(plain.steps) == len(dedup.steps) == 2
    for p_step, d_step in zip(plain.steps, dedup.steps, strict=True):
        p_micros, d_micros = p_step[0], d_step[0]
        assert sorted(i for m in p_micros for i in m.indices) == sorted(i for m in d_micros for i in m.indices)
        assert sum(m.weight for m in d_micros) == pytest.approx(1.0)
        for m in d_micros:
            assert len({keys[i] for i in m.indices}) <= 2
            assert m.weight == pytest.approx(
                sum(resp[i] for i in m.indices) / sum(resp[i] for n in d_micros for i in n.indices)
            )
        rows = [keys[i] for m in d_micros for i in m.indices]
        for key in set(rows):  # all copies of a row of this mini-batch sit in one micro-batch
            assert sum(key in {keys[i] for i in m.indices} for m in d_micros) == 1
    # a duplicate-heavy mini-batch needs fewer micro-batches (forward passes) than plain
    assert sum(len(s[0]) for s in dedup.steps) < sum(len(s[0]) for s in plain.steps)
    # loss_scale=micro: the make-up of a micro-batch is part of the loss, so the keys change nothing
    micro = {**common, "loss_scale": "micro"}
    assert plan_update(resp, total, row_keys=keys, **micro).steps == plan_update(resp, total, **micro).steps


def rows_counter(worker: PolicyWorker) -> list[int]:
    """Rows of every forward pass of the worker's policy and reference modules (a forward hook)."""
    rows: list[int] = []
    for module in (worker.model, worker.reference):
        module.register_forward_hook(
            lambda _m, _a, kwargs, _out: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
        )
    return rows


def test_identical_samples_share_a_forward_pass_with_the_same_log_probs_and_update(tiny_model_dir):
    """trainer.dedup_samples: a batch in which some samples repeat another's prompt and response (other
    advantages, other recorded old log-probs) gives the same log-probs and, after an update of several
    optimizer steps, the same weights as the plain passes, with fewer rows through the model."""
    path = str(tiny_model_dir)
    sampler, prompts, gens = sampled(path, 6, seed=2)
    base = as_samples(prompts, gens, seed=4)
    rng = np.random.default_rng(9)
    copies = [base[i] for i in (0, 0, 2, 3, 3, 3)]
    samples = base + [TrainSample(s.prompt_ids, s.response_ids, advantage=float(rng.normal())) for s in copies]
    results = {}
    for dedup in (False, True):
        cfg = trainer_cfg(
            ppo_mini_batch_size=4, micro_batch_size=2, dedup_samples=dedup, loss_scale="global", share_prompts=False
        )
        worker = PolicyWorker(path, model_settings(), cfg, temperature=TEMPERATURE)
        rows = rows_counter(worker)
        answers = worker.log_probs(samples, True)
        batch = [
            TrainSample(s.prompt_ids, s.response_ids, s.advantage, [x + 0.01 * k for x in a["old"]], a["ref"])
            for k, (s, a) in enumerate(zip(samples, answers, strict=True))
        ]
        log_prob_rows = sum(rows)
        stats = worker.update(batch, seed=3)
        results[dedup] = (answers, stats, worker.parameter_vector(), log_prob_rows, sum(rows) - log_prob_rows)
    (plain_lp, plain_stats, plain_w, plain_lp_rows, plain_up_rows) = results[False]
    (fast_lp, fast_stats, fast_w, fast_lp_rows, fast_up_rows) = results[True]
    assert plain_lp_rows == 2 * len(samples) and fast_lp_rows == 2 * len(base)  # policy + reference passes
    assert fast_up_rows < plain_up_rows == len(samples)
    for a, b in zip(plain_lp, fast_lp, strict=True):
        np.testing.assert_allclose(a["old"], b["old"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(a["ref"], b["ref"], rtol=0, atol=1e-6)
    for key in ("actor/pg_loss", "actor/kl", "actor/grad_norm", "actor/ratio_mean"):
        assert abs(plain_stats[key] - fast_stats[key]) <= 1e-5 * max(1.0, abs(plain_stats[key])), key
    assert float((plain_w - sampler.parameter_vector()).abs().max()) > 1e-3  # the update moved the weights
    torch.testing.assert_close(fast_w, plain_w, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------- rollout.dedup_prefill
def test_repeated_prompts_are_prefilled_once_and_sample_the_same_tokens(tiny_model_dir):
    """rollout.dedup_prefill: a batch whose prompts repeat (a group's first turn) samples the same tokens
    with the same log-probs (to float rounding) as the plain engine, and its prefill runs one row per
    distinct prompt (the rows' cache is copied to their repeats)."""
    path = str(tiny_model_dir)
    model, tokenizer = load_causal_lm(path, dtype="float32"), load_tokenizer(path)
    distinct = prompts_of(tokenizer, 4)
    prompts = [distinct[i] for i in (0, 0, 0, 1, 2, 2, 3, 3)]
    settings = SamplingSettings(temperature=TEMPERATURE, max_new_tokens=8, seed=5)
    runs = {}
    for dedup in (False, True):
        engine = HFEngine(model, tokenizer, batch_size=8, dedup_prefill=dedup)
        widths: list[tuple[int, int]] = []
        logits: list[tuple[int, ...]] = []

        def record(_m, _a, kwargs, out, seen=widths, kept=logits):
            seen.append(tuple(kwargs["input_ids"].shape))
            kept.append(tuple(out.logits.shape))

        hook = model.register_forward_hook(record, with_kwargs=True)
        runs[dedup] = (engine.generate(prompts, settings), widths, logits)
        hook.remove()
    (plain, plain_calls, _), (fast, fast_calls, fast_logits) = runs[False], runs[True]
    assert [g.token_ids for g in plain] == [g.token_ids for g in fast]
    assert len({tuple(g.token_ids) for g in plain[:3]}) > 1  # repeats of one prompt still sample their own replies
    for a, b in zip(plain, fast, strict=True):
        np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=0, atol=1e-5)
    width = max(len(p) for p in prompts)
    assert plain_calls[0] == (8, width)  # plain: the whole batch's prompts in one prefill
    assert fast_calls[0] == (4, width - 1) and fast_calls[1] == (8, 1)  # distinct rows once, then the last token
    assert fast_logits[0][:2] == (4, 1)  # the shared prefill keeps no logits but the last position's
    # without repeats nothing changes: the plain path's calls
    engine = HFEngine(model, tokenizer, batch_size=8, dedup_prefill=True)
    assert [g.token_ids for g in engine.generate(distinct, settings)] == [
        g.token_ids for g in HFEngine(model, tokenizer, batch_size=8).generate(distinct, settings)
    ]


def test_distinct_prompts_are_prefilled_in_chunks_by_length_and_sample_the_same_tokens(tiny_model_dir):
    """rollout.prefill_chunk: the distinct prompts are prefilled `chunk` at a time in order of length, each
    forward as wide as its longest prompt; the assembled cache (copied to the repeats) samples the same
    tokens with the same log-probs (to float rounding) as the plain engine, with or without repeats."""
    path = str(tiny_model_dir)
    model, tokenizer = load_causal_lm(path, dtype="float32"), load_tokenizer(path)
    distinct = prompts_of(tokenizer, 5)
    settings = SamplingSettings(temperature=TEMPERATURE, max_new_tokens=8, seed=3)
    for prompts in ([distinct[i] for i in (4, 0, 2, 2, 1, 3, 0, 4)], distinct):
        plain = HFEngine(model, tokenizer, batch_size=8).generate(prompts, settings)
        calls: list[tuple[int, int]] = []
        hook = model.register_forward_hook(
            lambda _m, _a, kw, _o, seen=calls: seen.append(tuple(kw["input_ids"].shape)), with_kwargs=True
        )
        fast = HFEngine(model, tokenizer, batch_size=8, dedup_prefill=True, prefill_chunk=2).generate(prompts, settings)
        hook.remove()
        assert [g.token_ids for g in fast] == [g.token_ids for g in plain]
        for a, b in zip(plain, fast, strict=True):
            np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=0, atol=1e-5)
        unique = sorted({tuple(p): len(p) for p in prompts}.values())  # distinct prompts' lengths
        expected = [(len(unique[i : i + 2]), max(unique[i : i + 2]) - 1) for i in range(0, len(unique), 2)]
        assert calls[: len(expected)] == expected  # shortest first, each as wide as its longest prompt
        assert calls[len(expected)] == (len(prompts), 1)  # then generate runs the last prompt token of every row


def test_the_prefilled_cache_has_room_and_decode_steps_write_in_place(tiny_model_dir):
    """shared_prefill(room=n): each layer's keys and values are the front of a buffer n columns wider;
    generate's decode steps fill that room in place (no concatenation of the whole cache) and sample
    bit-identical tokens and log-probs to a cache without room; one step too many falls back to concatenating."""
    from hgpo_cli.engines.hf import shared_prefill
    from hgpo_cli.engines.kv_room import RoomyLayer

    path = str(tiny_model_dir)
    model, tokenizer = load_causal_lm(path, dtype="float32"), load_tokenizer(path)
    distinct = prompts_of(tokenizer, 5)
    prompts = [distinct[i] for i in (4, 0, 2, 2, 1, 3, 0, 4)]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    keys = [tuple(p) for p in prompts]
    runs = {}
    for room in (0, 6):
        torch.manual_seed(11)
        with torch.no_grad():
            cached = shared_prefill(model, ids, mask, keys, chunk=2, room=room)
            cache = next(iter(cached.values()))
            buffers = [layer.key_buffer for layer in cache.layers] if room else []
            out = model.generate(
                input_ids=ids, attention_mask=mask, **cached, do_sample=True, temperature=TEMPERATURE, top_k=None,
                max_new_tokens=8, min_new_tokens=8, pad_token_id=0, output_scores=True, return_dict_in_generate=True,
            )  # fmt: skip
        runs[room] = (out.sequences, torch.stack(out.scores), cache, buffers)
    (tokens, scores, plain_cache, _), (room_tokens, room_scores, cache, buffers) = runs[0], runs[6]
    assert torch.equal(room_tokens, tokens) and torch.equal(room_scores, scores)
    assert all(type(layer) is RoomyLayer for layer in cache.layers)
    assert all(type(layer) is not RoomyLayer for layer in plain_cache.layers)
    # the cache holds every prompt token and the 7 generated tokens fed back; the room (6 columns) took the
    # last prompt token and 5 of them in place, then the layer concatenated as a DynamicLayer does
    assert cache.get_seq_length() == plain_cache.get_seq_length() == width - 1 + 1 + 7
    for layer, plain_layer, buffer in zip(cache.layers, plain_cache.layers, buffers, strict=True):
        assert buffer.shape[-2] == width - 1 + 6 and layer.keys.data_ptr() != buffer.data_ptr()
        assert torch.equal(buffer, plain_layer.keys[..., : width + 5, :])
        assert torch.equal(layer.keys, plain_layer.keys)
    layer = RoomyLayer(torch.zeros(2, 1, 5, 4), torch.zeros(2, 1, 5, 4), length=3)
    keys, _ = layer.update(torch.ones(2, 1, 1, 4), torch.ones(2, 1, 1, 4))
    assert keys.shape[-2] == 4 and keys.data_ptr() == layer.key_buffer.data_ptr() and float(layer.key_buffer.sum()) == 8


def test_chunked_prefill_falls_back_to_one_forward_for_sliding_window_caches():
    """A sliding-window model's cache layers are not plain key/value tensors: `shared_prefill` prefills its
    distinct prompts in one forward instead of assembling chunks."""
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from hgpo_cli.engines.hf import _plain_layers

    shape = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    shape |= {"num_key_value_heads": 1, "vocab_size": 100}
    assert _plain_layers(Qwen2ForCausalLM(Qwen2Config(**shape)))
    assert not _plain_layers(MistralForCausalLM(MistralConfig(sliding_window=16, **shape)))
