"""Mini-batch plans and loss scales: verl's per-micro-batch mean (micro) against one token-mean (global),
with numbers worked out by hand; padding with copies, balanced ranks, and the worker that follows a plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgpo_cli.train.loss import ppo_clip_loss
from hgpo_cli.train.minibatch import balanced_partitions, padding_copies, plan_update


def _flat(plan, rank: int = 0):
    """[(indices, weight)] of rank `rank`, step by step."""
    return [[(m.indices, m.weight) for m in step[rank]] for step in plan.steps]


def _micro_loss(adv: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A micro-batch of one sequence with `n_tokens` tokens, ratio 1 (logp = old): the PPO loss and the leaf."""
    logp = torch.zeros(1, n_tokens, requires_grad=True)
    loss, _ = ppo_clip_loss(logp, logp.detach(), adv.expand(1, n_tokens), torch.ones(1, n_tokens))
    return loss, logp


@pytest.mark.parametrize("scale", ["micro", "global"])
def test_two_micro_batches_of_different_token_counts(scale: str) -> None:
    # sample 0: 1 token, advantage 1; sample 1: 3 tokens, advantage 2; micro-batches of one sample each.
    # At ratio 1 the per-token loss is -A and d loss / d logp = -A x (the token's weight).
    #   global: loss = -(1 + 3 x 2) / 4 = -1.75;  grad sample 0 = -1/4, each token of sample 1 = -2/4
    #   micro:  loss = -(1 + 2) / 2 = -1.5;      grad sample 0 = -1/2, each token of sample 1 = -2/(2 x 3)
    plan = plan_update([1, 3], [5, 7], mini_batch_size=2, micro_batch_size=1, loss_scale=scale, pad="none")
    (step,) = _flat(plan)
    weights = {idx[0]: w for idx, w in step}
    assert weights == ({0: 0.5, 1: 0.5} if scale == "micro" else {0: 0.25, 1: 0.75})
    loss0, lp0 = _micro_loss(torch.tensor(1.0), 1)
    loss1, lp1 = _micro_loss(torch.tensor(2.0), 3)
    total = weights[0] * loss0 + weights[1] * loss1
    total.backward()
    if scale == "micro":
        assert float(total.detach()) == pytest.approx(-1.5)
        assert lp0.grad[0].tolist() == pytest.approx([-0.5])
        assert lp1.grad[0].tolist() == pytest.approx([-1 / 3] * 3)
    else:
        assert float(total.detach()) == pytest.approx(-1.75)
        assert lp0.grad[0].tolist() == pytest.approx([-0.25])
        assert lp1.grad[0].tolist() == pytest.approx([-0.5] * 3)


def test_short_last_mini_batch_is_down_weighted_in_micro_mode() -> None:
    # 3 samples, mini-batch 2, micro-batch 1: steps [0, 1] and [2].
    # micro: GA = 2, each micro-batch weighs 1/2, so the last step's loss is half a full step's.
    # global: the last step is its own token-mean (weight 1).
    lengths = [2, 4, 3]
    micro = _flat(plan_update(lengths, lengths, mini_batch_size=2, micro_batch_size=1, loss_scale="micro", pad="none"))
    assert micro == [[((0,), 0.5), ((1,), 0.5)], [((2,), 0.5)]]
    glob = _flat(plan_update(lengths, lengths, mini_batch_size=2, micro_batch_size=1, loss_scale="global", pad="none"))
    assert glob == [[((0,), pytest.approx(2 / 6)), ((1,), pytest.approx(4 / 6))], [((2,), 1.0)]]


def test_micro_mode_groups_consecutive_samples_and_keeps_the_order_every_epoch() -> None:
    lengths = [1, 2, 3, 4, 5, 6]
    plan = plan_update(lengths, lengths, mini_batch_size=4, micro_batch_size=2, epochs=2, pad="none")
    one_epoch = [[((0, 1), 0.5), ((2, 3), 0.5)], [((4, 5), 0.5)]]
    assert _flat(plan) == one_epoch + one_epoch


def test_seq_mean_global_counts_sequences_with_tokens() -> None:
    # sample 1 has no response tokens: its micro-batch gets weight 0, the others share the step by sequences
    plan = plan_update(
        [3, 0, 5],
        [4, 1, 6],
        mini_batch_size=3,
        micro_batch_size=1,
        loss_scale="global",
        agg_mode="seq-mean-token-mean",
        pad="none",
    )
    assert _flat(plan) == [[((0,), 0.5), ((1,), 0.0), ((2,), 0.5)]]


def test_padding_copies_distinct_samples_to_a_multiple() -> None:
    rng = np.random.default_rng(0)
    copies = padding_copies(5, 4, rng)
    assert len(copies) == 3 and len(set(copies)) == 3 and all(0 <= c < 5 for c in copies)
    assert padding_copies(8, 4, rng) == []
    assert padding_copies(7, 1, rng) == []
    plan = plan_update([1] * 5, [1] * 5, mini_batch_size=8, micro_batch_size=2, pad="copy", seed=3)
    assert len(plan.copies) == 1
    (step,) = _flat(plan)
    used = [i for idx, _ in step for i in idx]
    assert used == [0, 1, 2, 3, 4, plan.copies[0]]  # the copy is appended after the batch
    assert [w for _, w in step] == [0.25, 0.25, 0.25]  # three full micro-batches of a mini-batch of 8


def test_balanced_partitions_equal_sizes_even_totals() -> None:
    assert balanced_partitions([10, 1, 9, 2], 2) in ([[0, 1], [2, 3]], [[2, 3], [0, 1]])
    parts = balanced_partitions([5, 5, 5, 5, 1, 1, 1, 1], 4)
    assert sorted(len(p) for p in parts) == [2, 2, 2, 2]
    assert sorted(sum([5, 5, 5, 5, 1, 1, 1, 1][i] for i in p) for p in parts) == [6, 6, 6, 6]
    assert balanced_partitions([3, 1, 2], 1) == [[0, 1, 2]]
    with pytest.raises(ValueError):
        balanced_partitions([1, 2, 3], 2)


def test_two_ranks_micro_mode_balanced_shares() -> None:
    # totals 10, 1, 9, 2 -> ranks {0, 1} and {2, 3} (11 tokens each); per-rank mini-batch 2 / 2 = 1 sample,
    # micro-batch 1: two steps, each micro-batch weighs 1 / (GA x world) = 1 / 2
    lengths = [10, 1, 9, 2]
    plan = plan_update(lengths, lengths, mini_batch_size=2, micro_batch_size=1, world_size=2, pad="none")
    shares = sorted([[m.indices[0] for step in plan.steps for m in step[r]] for r in range(2)])
    assert shares == [[0, 1], [2, 3]]
    assert all(m.weight == 0.5 for step in plan.steps for rank in step for m in rank)
    assert len(plan.steps) == 2


def test_shuffle_global_covers_every_sample_once_per_epoch() -> None:
    lengths = list(range(1, 11))
    plan = plan_update(
        lengths,
        lengths,
        mini_batch_size=4,
        micro_batch_size=2,
        world_size=2,
        epochs=2,
        loss_scale="global",
        shuffle=True,
        pad="none",
        seed=1,
    )
    seen = [i for step in plan.steps for rank in step for m in rank for i in m.indices]
    assert sorted(seen) == sorted(list(range(10)) * 2)
    for step in plan.steps:
        assert sum(m.weight for rank in step for m in rank) == pytest.approx(1.0)


def test_unknown_scale_raises() -> None:
    with pytest.raises(ValueError, match="loss_scale"):
        plan_update([1], [1], mini_batch_size=1, micro_batch_size=1, loss_scale="tokens")


@pytest.mark.parametrize("scale", ["micro", "global"])
def test_worker_gradient_follows_the_plan(tiny_model_dir, scale: str) -> None:
    """The worker's accumulated gradient is the plan's weighted sum of per-micro-batch loss gradients."""
    from hgpo_cli.train.batch import TrainSample
    from hgpo_cli.train.policy_worker import PolicyWorker, model_settings, trainer_settings

    cfg = trainer_settings(
        device="cpu",
        lr=0.0,
        weight_decay=0.0,
        grad_clip=1e9,
        ppo_mini_batch_size=2,
        micro_batch_size=1,
        loss_scale=scale,
        shuffle=False,
        pad_batch="none",
        use_kl_loss=False,
        entropy_coeff=0.0,
    )
    worker = PolicyWorker(str(tiny_model_dir), model_settings(), cfg)
    tok = worker.tokenizer
    samples = [
        TrainSample(tok.encode("look around"), tok.encode("go")[:1], advantage=1.0),
        TrainSample(tok.encode("open the drawer"), tok.encode("take the apple now")[:4], advantage=-0.5),
    ]
    for sample, lp in zip(samples, worker.log_probs(samples), strict=True):
        sample.old_log_probs = lp["old"]
    grads = []
    for sample in samples:
        worker.model.zero_grad()
        loss, _ = worker._objective([sample], with_entropy=False)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten().clone() for p in worker.params]))
    n0, n1 = (len(s.response_ids) for s in samples)
    w0, w1 = (0.5, 0.5) if scale == "micro" else (n0 / (n0 + n1), n1 / (n0 + n1))
    stats = worker.update(samples, seed=0)
    got = torch.cat([p.grad.flatten() for p in worker.params])
    torch.testing.assert_close(got, w0 * grads[0] + w1 * grads[1], rtol=1e-4, atol=1e-6)
    assert stats["actor/step_weight"] == pytest.approx(1.0)


def test_config_paper_presets_follow_verl_and_bad_values_are_one_line_errors() -> None:
    from hgpo_cli.config import load_config
    from hgpo_cli.errors import ConfigError

    for name in ("alfworld-qwen2.5-1.5b", "alfworld-qwen2.5-7b", "webshop-qwen2.5-1.5b", "webshop-qwen2.5-7b"):
        trainer = load_config(name).trainer
        assert (trainer.loss_scale, trainer.shuffle, trainer.pad_batch) == ("micro", False, "copy"), name
    assert load_config("smollm2").trainer.loss_scale == "global"  # the embedded CPU default (see its preset)
    with pytest.raises(ConfigError, match="must be a multiple of trainer.micro_batch_size x trainer.num_workers"):
        load_config("alfworld-qwen2.5-1.5b", ["trainer.micro_batch_size=24"])
    with pytest.raises(ConfigError, match="trainer.loss_scale='tokens' is not allowed"):
        load_config("smollm2", ["trainer.loss_scale=tokens"])
    assert (
        load_config("smollm2", ["trainer.loss_scale=global", "trainer.micro_batch_size=24"]).trainer.micro_batch_size
        == 24
    )
