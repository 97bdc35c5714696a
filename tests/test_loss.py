"""Tests for hgpo_cli.train.loss against hand-computed values, a readable loop oracle and mask properties."""

import math
import subprocess
import sys

import pytest
import torch

from hgpo_cli.train.loss import (
    AGG_MODES,
    KL_KINDS,
    aggregate_loss,
    entropy_from_logits,
    kl_penalty,
    masked_mean,
    policy_objective,
    ppo_clip_loss,
    token_log_probs,
)

torch.set_num_threads(1)

ATOL = 1e-6


def t(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def close(actual: torch.Tensor, expected: float | list) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=ATOL, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------
# token_log_probs / entropy_from_logits
# ----------------------------------------------------------------------------------------------------


def test_token_log_probs_and_entropy_tiny_vocab() -> None:
    # V = 3. Row 0: logits (0, ln 3, 0) -> exp = (1, 3, 1), Z = 5, p = (0.2, 0.6, 0.2).
    #   token 1: log 0.6; token 0: log 0.2.   H = -(2 * 0.2 ln 0.2 + 0.6 ln 0.6) = 0.9502705...
    # Row 1: logits (5, 5, 5) -> uniform, log p = -ln 3 for any token, H = ln 3.
    logits = t([[[0.0, math.log(3.0), 0.0], [0.0, math.log(3.0), 0.0]], [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]])
    tokens = torch.tensor([[1, 0], [2, 0]])
    lp = token_log_probs(logits, tokens)
    assert lp.shape == (2, 2) and lp.dtype == torch.float32
    close(lp, [[math.log(0.6), math.log(0.2)], [-math.log(3.0), -math.log(3.0)]])

    h_row0 = -(2 * 0.2 * math.log(0.2) + 0.6 * math.log(0.6))
    assert abs(h_row0 - 0.9502705) < 1e-6
    ent = entropy_from_logits(logits)
    assert ent.shape == (2, 2) and ent.dtype == torch.float32
    close(ent, [[h_row0, h_row0], [math.log(3.0), math.log(3.0)]])


def test_token_log_probs_matches_log_softmax_and_grad() -> None:
    # The memory-efficient path must equal the naive log_softmax-gather, values and gradients.
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 11, generator=gen) * 4).requires_grad_(True)
    tokens = torch.randint(0, 11, (3, 5), generator=gen)
    lp = token_log_probs(logits, tokens)
    ref = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(lp, ref)
    (g1,) = torch.autograd.grad(lp.sum(), logits)
    (g2,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g1, g2)

    ent = entropy_from_logits(logits)
    p = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(ent, -(p * torch.log_softmax(logits, dim=-1)).sum(-1))


def test_token_log_probs_bf16_logits_give_float32() -> None:
    logits = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    tokens = torch.randint(0, 7, (2, 4), generator=torch.Generator().manual_seed(2))
    lp = token_log_probs(logits, tokens)
    assert lp.dtype == torch.float32
    ref = torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(lp, ref)
    assert entropy_from_logits(logits).dtype == torch.float32


# ----------------------------------------------------------------------------------------------------
# kl_penalty
# ----------------------------------------------------------------------------------------------------

KL_LOGP = [[-1.0, -2.0]]
KL_REF = [[-1.5, -1.0]]
# logp - ref = (0.5, -1.0); d = ref - logp = (-0.5, 1.0)
# low_var_kl: exp(-0.5) + 0.5 - 1 = 0.6065306597 - 0.5 = 0.1065306597;  exp(1) - 1 - 1 = 0.7182818285
KL_EXPECTED = {
    "kl": [[0.5, -1.0]],
    "abs": [[0.5, 1.0]],
    "mse": [[0.125, 0.5]],  # 0.5 * 0.25, 0.5 * 1
    "low_var_kl": [[math.exp(-0.5) - 0.5, math.e - 2.0]],
}


@pytest.mark.parametrize("kind", KL_KINDS)
def test_kl_penalty_each_kind(kind: str) -> None:
    assert abs(KL_EXPECTED["low_var_kl"][0][0] - 0.1065306597) < 1e-9
    close(kl_penalty(t(KL_LOGP), t(KL_REF), kind), KL_EXPECTED[kind])


def test_kl_kinds_are_exactly_the_documented_ones() -> None:
    assert set(KL_KINDS) == set(KL_EXPECTED)


def test_low_var_kl_clamp() -> None:
    # d = ref - logp:
    #   d = 20    -> exp(20) - 21 ~ 4.85e8  -> clamped to 10
    #   d = -15   -> exp(-15) + 15 - 1 = 14.0000003 -> clamped to 10
    #   d = 100   -> d itself clamped to 20 first (exp stays finite) -> 10
    #   d = -100  -> d clamped to -20 -> 19.0000000021 -> 10
    #   d = 2     -> exp(2) - 3 = 4.3890561 (inside, unclamped)
    logp = t([[-20.0, 0.0, -100.0, 0.0, -2.0]]).requires_grad_(True)
    ref = t([[0.0, -15.0, 0.0, -100.0, 0.0]])
    kl = kl_penalty(logp, ref, "low_var_kl")
    close(kl, [[10.0, 10.0, 10.0, 10.0, math.exp(2.0) - 3.0]])
    kl.sum().backward()
    # Clamped entries carry no gradient and nothing is NaN; the inside one: d/dlogp (e^d - d - 1) = 1 - e^d.
    assert torch.isfinite(logp.grad).all()
    close(logp.grad, [[0.0, 0.0, 0.0, 0.0, 1.0 - math.exp(2.0)]])


def test_unknown_kl_kind_and_agg_mode_raise_one_line() -> None:
    with pytest.raises(ValueError, match="allowed: kl, abs, mse, low_var_kl") as err:
        kl_penalty(t([[0.0]]), t([[0.0]]), "k4")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="token-mean, seq-mean-token-sum, seq-mean-token-mean") as err:
        aggregate_loss(t([[0.0]]), t([[1.0]]), "seq-sum")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="allowed"):
        ppo_clip_loss(t([[0.0]]), t([[0.0]]), t([[1.0]]), t([[1.0]]), agg_mode="mean")
    with pytest.raises(ValueError, match="allowed"):
        policy_objective(
            t([[0.0]]), t([[0.0]]), t([[0.0]]), t([[1.0]]), t([[1.0]]), None,
            clip_low=0.2, clip_high=0.2, clip_c=3.0, kl_coef=0.01, kl_type="nope", entropy_coeff=0.0,
        )  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# ppo_clip_loss: one regime per token, B = 1, T = 1
# ----------------------------------------------------------------------------------------------------


def run_ppo(log_ratio: float, adv: float, **kw: float) -> tuple[float, float, dict[str, float]]:
    """Loss, d loss / d logp and stats for one valid token with logp - old = log_ratio."""
    logp = t([[log_ratio - 1.0]]).requires_grad_(True)
    old = t([[-1.0]])
    loss, stats = ppo_clip_loss(logp, old, t([[adv]]), t([[1.0]]), **kw)
    loss.backward()
    return loss.item(), logp.grad.item(), {k: v.item() for k, v in stats.items()}


def test_ppo_inside_clip_range() -> None:
    # r = e^0.1 = 1.1051709, A = 2: pg1 = -2.2103418 = pg2 (r inside [0.8, 1.2]) -> loss -2.2103418,
    # d/dlogp (-A r) = -A r = -2.2103418; nothing clipped.
    r = math.exp(0.1)
    loss, grad, stats = run_ppo(0.1, 2.0)
    assert loss == pytest.approx(-2.0 * r) and grad == pytest.approx(-2.0 * r)
    assert stats["clip_frac"] == 0.0 and stats["dual_clip_frac"] == 0.0
    assert stats["ratio_mean"] == pytest.approx(r)
    assert stats["approx_kl"] == pytest.approx(-0.1)  # old - logp


def test_ppo_above_high_clip_positive_advantage() -> None:
    # r = 1.5, A = 1: pg1 = -1.5, pg2 = -1 * 1.2 = -1.2, max = -1.2 (clipped, no gradient).
    loss, grad, stats = run_ppo(math.log(1.5), 1.0)
    assert loss == pytest.approx(-1.2) and grad == 0.0
    assert stats["clip_frac"] == 1.0 and stats["dual_clip_frac"] == 0.0


def test_ppo_below_low_clip_negative_advantage() -> None:
    # r = 0.5, A = -1: pg1 = 0.5, pg2 = 1 * 0.8 = 0.8, clipped = 0.8; pg3 = 3, dual = min(3, 0.8) = 0.8.
    loss, grad, stats = run_ppo(math.log(0.5), -1.0)
    assert loss == pytest.approx(0.8) and grad == 0.0
    assert stats["clip_frac"] == 1.0 and stats["dual_clip_frac"] == 0.0


def test_ppo_below_low_clip_positive_advantage_is_not_clipped() -> None:
    # r = 0.5, A = 1: pg1 = -0.5, pg2 = -0.8, max = -0.5 (the pessimistic bound keeps the gradient -A r).
    loss, grad, stats = run_ppo(math.log(0.5), 1.0)
    assert loss == pytest.approx(-0.5) and grad == pytest.approx(-0.5)
    assert stats["clip_frac"] == 0.0


@pytest.mark.parametrize("log_ratio", [math.log(10.0), 50.0])
def test_ppo_dual_clip_negative_advantage_huge_ratio(log_ratio: float) -> None:
    # r = 10 (or e^50, clamped to e^20), A = -1: pg1 = r, pg2 = 1.2, clipped = r; pg3 = -A * 3 = 3;
    # dual = min(3, r) = 3, constant -> no gradient. pg2 > pg1 is false, so clip_frac is 0.
    loss, grad, stats = run_ppo(log_ratio, -1.0)
    assert loss == pytest.approx(3.0) and grad == 0.0
    assert stats["clip_frac"] == 0.0 and stats["dual_clip_frac"] == 1.0
    assert math.isfinite(stats["ratio_mean"])
    assert stats["ratio_mean"] == pytest.approx(math.exp(min(log_ratio, 20.0)), rel=1e-5)


def test_ppo_separate_low_and_high_clip() -> None:
    # clip_low = 0.1, clip_high = 0.3 -> range [0.9, 1.3].
    kw = {"clip_low": 0.1, "clip_high": 0.3}
    # r = 1.5, A = 1: pg2 = -1.3 > pg1 = -1.5 -> -1.3
    assert run_ppo(math.log(1.5), 1.0, **kw)[0] == pytest.approx(-1.3)
    # r = 0.5, A = -1: pg2 = 0.9 > pg1 = 0.5 -> 0.9 (< pg3 = 3)
    assert run_ppo(math.log(0.5), -1.0, **kw)[0] == pytest.approx(0.9)
    # r = 1.25, A = 1: inside [0.9, 1.3] -> -1.25 with gradient -1.25 (the symmetric 0.2 would clip to -1.2)
    loss, grad, stats = run_ppo(math.log(1.25), 1.0, **kw)
    assert loss == pytest.approx(-1.25) and grad == pytest.approx(-1.25) and stats["clip_frac"] == 0.0
    assert run_ppo(math.log(1.25), 1.0)[0] == pytest.approx(-1.2)
    # r = 0.85, A = -1: below 0.9 -> pg2 = 0.9 vs pg1 = 0.85 -> 0.9 (symmetric 0.2 would leave 0.85)
    assert run_ppo(math.log(0.85), -1.0, **kw)[0] == pytest.approx(0.9)
    assert run_ppo(math.log(0.85), -1.0)[0] == pytest.approx(0.85)


def test_ppo_stats_over_a_batch() -> None:
    # Four valid tokens, one padding: the four regimes above (inside, above+A>0, below+A<0, dual).
    # clip_frac = 2/4 (tokens 1, 2); dual_clip_frac = 1/4 (token 3);
    # loss (token-mean) = (-2 e^0.1 - 1.2 + 0.8 + 3) / 4; approx_kl = -(0.1 + ln1.5 + ln0.5 + ln10) / 4.
    log_ratio = [0.1, math.log(1.5), math.log(0.5), math.log(10.0), 7.0]
    old = t([[-1.0] * 5])
    logp = old + t([log_ratio])
    adv = t([[2.0, 1.0, -1.0, -1.0, 5.0]])
    mask = t([[1, 1, 1, 1, 0]])
    loss, stats = ppo_clip_loss(logp, old, adv, mask)
    close(loss, (-2 * math.exp(0.1) - 1.2 + 0.8 + 3.0) / 4)
    close(stats["clip_frac"], 0.5)
    close(stats["dual_clip_frac"], 0.25)
    close(stats["approx_kl"], -sum(log_ratio[:4]) / 4)
    close(stats["ratio_mean"], (math.exp(0.1) + 1.5 + 0.5 + 10.0) / 4)
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())


def test_ppo_rejects_bad_clip_c() -> None:
    with pytest.raises(ValueError, match="clip_c"):
        ppo_clip_loss(t([[0.0]]), t([[0.0]]), t([[1.0]]), t([[1.0]]), clip_c=1.0)


def loop_ppo_token(logp: float, old: float, adv: float, lo: float, hi: float, c: float) -> float:
    """Readable per-token oracle of the dual-clip surrogate."""
    ratio = math.exp(max(-20.0, min(20.0, logp - old)))
    unclipped = -adv * ratio
    clipped = -adv * max(1 - lo, min(1 + hi, ratio))
    loss = max(unclipped, clipped)
    if adv < 0:
        loss = min(loss, -adv * c)
    return loss


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", AGG_MODES)
def test_ppo_matches_loop_oracle(seed: int, mode: str) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, n = 4, 6
    old = -torch.rand(b, n, generator=gen, dtype=torch.float64) * 3
    logp = old + torch.randn(b, n, generator=gen, dtype=torch.float64) * 0.7
    adv = torch.randn(b, n, generator=gen, dtype=torch.float64) * 2
    mask = (torch.rand(b, n, generator=gen) < 0.7).double()
    mask[0] = 0.0  # one sequence without valid tokens
    lo, hi, c = 0.2, 0.28, 3.0
    loss, _ = ppo_clip_loss(logp, old, adv, mask, clip_low=lo, clip_high=hi, clip_c=c, agg_mode=mode)

    per_seq = []
    for i in range(b):
        vals = [
            loop_ppo_token(logp[i, j].item(), old[i, j].item(), adv[i, j].item(), lo, hi, c)
            for j in range(n)
            if mask[i, j]
        ]
        per_seq.append(vals)
    if mode == "token-mean":
        flat = [v for vals in per_seq for v in vals]
        expected = sum(flat) / len(flat)
    elif mode == "seq-mean-token-sum":
        expected = sum(sum(v) for v in per_seq if v) / sum(1 for v in per_seq if v)
    else:
        expected = sum(sum(v) / len(v) for v in per_seq if v) / sum(1 for v in per_seq if v)
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ----------------------------------------------------------------------------------------------------
# Aggregation and masks
# ----------------------------------------------------------------------------------------------------

AGG_LOSS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
AGG_MASK = [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
# valid: row 0 -> (1, 2), row 1 -> (4), row 2 -> none (excluded from the sequence means)
AGG_EXPECTED = {
    "token-mean": 7.0 / 3.0,  # (1 + 2 + 4) / 3
    "seq-mean-token-sum": 3.5,  # (3 + 4) / 2
    "seq-mean-token-mean": 2.75,  # (1.5 + 4) / 2
}


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("bool_mask", [False, True])
def test_aggregate_loss_each_mode(mode: str, bool_mask: bool) -> None:
    mask = torch.tensor(AGG_MASK, dtype=torch.bool if bool_mask else torch.float32)
    close(aggregate_loss(t(AGG_LOSS), mask, mode), AGG_EXPECTED[mode])


def test_agg_modes_are_exactly_the_documented_ones() -> None:
    assert set(AGG_MODES) == set(AGG_EXPECTED)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_loss_empty_mask_is_zero_with_graph(mode: str) -> None:
    loss_mat = t(AGG_LOSS).requires_grad_(True)
    out = aggregate_loss(loss_mat, torch.zeros(3, 3), mode)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(loss_mat.grad, torch.zeros(3, 3))


def test_masked_mean() -> None:
    # (1 + 2 + 4) / 3 over valid entries; an empty mask gives 0.
    close(masked_mean(t(AGG_LOSS), t(AGG_MASK)), 7.0 / 3.0)
    close(masked_mean(t(AGG_LOSS), torch.zeros(3, 3, dtype=torch.bool)), 0.0)


def make_batch(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    b, n = 3, 5
    old = -torch.rand(b, n, generator=gen) * 3
    return {
        "log_probs": old + torch.randn(b, n, generator=gen) * 0.5,
        "old_log_probs": old,
        "ref_log_probs": old + torch.randn(b, n, generator=gen) * 0.5,
        "advantages": torch.randn(b, n, generator=gen),
        "entropy": torch.rand(b, n, generator=gen) * 2,
        "mask": t([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]),
    }


def objective(batch: dict[str, torch.Tensor], kl_type: str, agg_mode: str) -> tuple[torch.Tensor, dict]:
    return policy_objective(
        batch["log_probs"],
        batch["old_log_probs"],
        batch["ref_log_probs"],
        batch["advantages"],
        batch["mask"],
        batch["entropy"],
        clip_low=0.2,
        clip_high=0.28,
        clip_c=3.0,
        kl_coef=0.01,
        kl_type=kl_type,
        entropy_coeff=0.001,
        agg_mode=agg_mode,
    )


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("kl_type", KL_KINDS)
def test_padding_never_changes_the_result(mode: str, kl_type: str) -> None:
    # Write huge (finite) garbage into every padded position of every input: loss, stats and the
    # gradient on valid tokens stay identical, and padded tokens get no gradient.
    clean = make_batch(0)
    dirty = {k: v.clone() for k, v in clean.items()}
    pad = clean["mask"] == 0
    garbage = {
        "log_probs": 1e4,
        "old_log_probs": -1e4,
        "ref_log_probs": 3e4,
        "advantages": -1e6,
        "entropy": 1e8,
    }
    for key, value in garbage.items():
        dirty[key][pad] = value

    results = []
    for batch in (clean, dirty):
        batch["log_probs"].requires_grad_(True)
        loss, stats = objective(batch, kl_type, mode)
        loss.backward()
        results.append((loss.detach(), stats, batch["log_probs"].grad))
    (loss_c, stats_c, grad_c), (loss_d, stats_d, grad_d) = results
    assert torch.isfinite(loss_d)
    assert torch.equal(loss_c, loss_d)
    assert stats_c.keys() == stats_d.keys()
    for key in stats_c:
        assert torch.equal(stats_c[key], stats_d[key]), key
    assert torch.equal(grad_c, grad_d)
    assert torch.all(grad_d[pad] == 0)


def test_gradient_flows_only_through_log_probs() -> None:
    batch = make_batch(1)
    for key in ("log_probs", "old_log_probs", "ref_log_probs", "advantages"):
        batch[key].requires_grad_(True)
    loss, stats = objective(batch, "low_var_kl", "token-mean")
    loss.backward()
    assert batch["log_probs"].grad is not None and batch["log_probs"].grad.abs().sum() > 0
    assert batch["old_log_probs"].grad is None
    assert batch["ref_log_probs"].grad is None
    assert batch["advantages"].grad is None
    assert all(not v.requires_grad for v in stats.values())


# ----------------------------------------------------------------------------------------------------
# policy_objective
# ----------------------------------------------------------------------------------------------------

# Two valid tokens, ratio 1 (logp = old), so no clipping: pg = -A = (-2, 1) -> pg_loss = -0.5.
# ref = (-1.5, -1.0): low_var_kl = (e^-0.5 - 0.5, e - 2) = (0.1065307, 0.7182818) -> kl = 0.4124062.
# entropy = (0.5, 1.5) -> 1.0.   total = -0.5 + 0.01 * 0.4124062 - 0.001 * 1.0 = -0.4968759.
PO_KL = (math.exp(-0.5) - 0.5 + math.e - 2.0) / 2
PO_ARGS = {
    "log_probs": [[-1.0, -2.0]],
    "old_log_probs": [[-1.0, -2.0]],
    "ref_log_probs": [[-1.5, -1.0]],
    "advantages": [[2.0, -1.0]],
    "mask": [[1.0, 1.0]],
    "entropy": [[0.5, 1.5]],
}
PO_KW = {"clip_low": 0.2, "clip_high": 0.2, "clip_c": 3.0, "kl_coef": 0.01, "kl_type": "low_var_kl"}


def po_args(**override: object) -> dict[str, object]:
    args: dict[str, object] = {k: t(v) for k, v in PO_ARGS.items()}
    args.update(override)
    return args


def test_policy_objective_combines_terms() -> None:
    assert abs(PO_KL - 0.4124062) < 1e-6
    total, stats = policy_objective(**po_args(), **PO_KW, entropy_coeff=0.001)
    close(total, -0.5 + 0.01 * PO_KL - 0.001 * 1.0)
    assert total.item() == pytest.approx(-0.4968759, abs=1e-6)
    close(stats["pg_loss"], -0.5)
    close(stats["kl"], PO_KL)
    close(stats["entropy"], 1.0)
    assert {"clip_frac", "dual_clip_frac", "approx_kl", "ratio_mean"} <= stats.keys()


def test_policy_objective_without_kl_and_without_entropy() -> None:
    # No KL term (ref may be None): total = -0.5 - 0.001 * 1.0; stats["kl"] = 0.
    total, stats = policy_objective(**po_args(ref_log_probs=None), **PO_KW, entropy_coeff=0.001, use_kl_loss=False)
    close(total, -0.501)
    close(stats["kl"], 0.0)
    # No entropy (coefficient 0, entropy None): total = -0.5 + 0.01 * kl; stats["entropy"] = 0.
    total, stats = policy_objective(**po_args(entropy=None), **PO_KW, entropy_coeff=0.0)
    close(total, -0.5 + 0.01 * PO_KL)
    close(stats["entropy"], 0.0)


def test_policy_objective_entropy_bonus_reaches_logits() -> None:
    # The entropy term back-propagates into the logits it came from: with zero advantages, no KL and
    # logp == old, the only gradient on the logits is -entropy_coeff * dH/dlogits / n_tokens.
    logits = t([[[0.0, math.log(3.0), 0.0]]]).requires_grad_(True)
    ent = entropy_from_logits(logits)
    lp = token_log_probs(logits, torch.tensor([[1]]))
    total, _ = policy_objective(
        lp, lp.detach(), None, t([[0.0]]), t([[1.0]]), ent,
        clip_low=0.2, clip_high=0.2, clip_c=3.0, kl_coef=0.0, kl_type="kl", entropy_coeff=0.5,
        use_kl_loss=False,
    )  # fmt: skip
    total.backward()
    (dh,) = torch.autograd.grad(entropy_from_logits(logits).sum(), logits)
    torch.testing.assert_close(logits.grad, -0.5 * dh)


def test_policy_objective_missing_inputs_raise() -> None:
    with pytest.raises(ValueError, match="ref_log_probs"):
        policy_objective(**po_args(ref_log_probs=None), **PO_KW, entropy_coeff=0.0)
    with pytest.raises(ValueError, match="entropy"):
        policy_objective(**po_args(entropy=None), **PO_KW, entropy_coeff=0.001)


# ----------------------------------------------------------------------------------------------------
# Import hygiene
# ----------------------------------------------------------------------------------------------------


def test_import_does_not_pull_heavy_frameworks() -> None:
    code = (
        "import sys, hgpo_cli.train.loss\n"
        "heavy = [m for m in ('ray', 'vllm', 'wandb', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing hgpo_cli.train.loss imported {out.stdout.strip()}"
