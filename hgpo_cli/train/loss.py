"""Token-level policy loss shared by every estimator (GRPO, GiGPO, RLOO, HGPO).

Pure torch: tensors in, tensors out. No framework batch objects, no devices chosen here, no logging.
Shapes use B = sequences in the micro-batch, T = response tokens (right-padded), V = vocabulary size.
``mask`` is always (B, T), 0/1 or bool, 1 on response tokens that count; padding may hold any finite
value and never changes a result.

The method (spec "Loss"): PPO clipped surrogate with dual clip (c = 3), ``token-mean`` aggregation,
a KL term to the frozen reference (``low_var_kl``, coefficient 0.01) and an entropy bonus (0.001).
The equations follow verl's ``core_algos.compute_policy_loss``, ``kl_penalty`` and ``agg_loss``.
"""

from typing import Protocol

import torch
from torch import Tensor

__all__ = [
    "AGG_MODES",
    "KL_KINDS",
    "aggregate_loss",
    "entropy_from_logits",
    "kl_penalty",
    "masked_mean",
    "nll_loss",
    "policy_objective",
    "ppo_clip_loss",
    "token_log_probs",
]

# Clamp of log(ratio) before exp, as verl does, so that exp never overflows (and gradients stay finite).
_LOG_RATIO_CLAMP = 20.0
# Clamp of the k3 estimate, as verl's low_var_kl does.
_LOW_VAR_KL_CLAMP = 10.0


class _PairFn(Protocol):
    """A per-token function of two (B, T) tensors (an aggregator or a KL estimator)."""

    def __call__(self, a: Tensor, b: Tensor, /) -> Tensor: ...


def _valid(mask: Tensor, like: Tensor) -> Tensor:
    """(B, T) 0/1 or bool mask -> (B, T) bool, checked against the shape of ``like``."""
    if mask.shape != like.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match values shape {tuple(like.shape)}")
    return mask.to(torch.bool)


def _zero_invalid(values: Tensor, valid: Tensor) -> Tensor:
    """``values`` with every invalid entry replaced by 0 (a select, so garbage there never leaks in)."""
    return torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device))


# ----------------------------------------------------------------------------------------------------
# Per-token quantities from logits
# ----------------------------------------------------------------------------------------------------


def token_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """Log-probability of each chosen token.

    logits: (B, T, V), any float dtype; tokens: (B, T) integer ids in [0, V).
    Returns (B, T) float32: ``log p(y) = logits[b, t, y] - logsumexp_v logits[b, t, v]``, y = tokens[b, t].

    Memory: never materialises a full (B, T, V) log_softmax; the logsumexp runs one sequence at a time
    in float32, so the extra peak is one (T, V) float32 row.
    """
    if logits.dim() != 3 or tokens.shape != logits.shape[:2]:
        raise ValueError(
            f"expected logits (B, T, V) and tokens (B, T), got {tuple(logits.shape)} and {tuple(tokens.shape)}"
        )
    picked = torch.gather(logits, dim=-1, index=tokens.long().unsqueeze(-1)).squeeze(-1).float()
    lse = torch.stack([torch.logsumexp(row.float(), dim=-1) for row in logits]) if logits.shape[0] else picked
    return picked - lse


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the categorical distribution at each position.

    logits: (B, T, V). Returns (B, T) float32:
    ``H = -sum_v p_v log p_v = logsumexp(logits) - sum_v softmax(logits)_v * logits_v``.
    Computed one sequence at a time in float32 (peak extra memory: a few (T, V) float32 rows).
    """
    if logits.dim() != 3:
        raise ValueError(f"expected logits (B, T, V), got {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        return logits.new_zeros(logits.shape[:2], dtype=torch.float32)
    rows = []
    for row in logits:
        row = row.float()
        probs = torch.softmax(row, dim=-1)
        rows.append(torch.logsumexp(row, dim=-1) - (probs * row).sum(dim=-1))
    return torch.stack(rows)


# ----------------------------------------------------------------------------------------------------
# Masked reductions
# ----------------------------------------------------------------------------------------------------


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over valid entries: ``sum(values * mask) / max(sum(mask), 1)``.

    values, mask: same shape (usually (B, T)); mask 0/1 or bool. Returns a scalar (0 when nothing is valid).
    """
    valid = _valid(mask, values)
    count = valid.sum().clamp(min=1).to(values.dtype)
    return _zero_invalid(values, valid).sum() / count


def nll_loss(log_probs: Tensor, mask: Tensor) -> Tensor:
    """Token-mean negative log-likelihood: ``-sum(log_probs * mask) / max(sum(mask), 1)`` (supervised replies).

    log_probs, mask: (B, T). Returns a scalar.
    """
    return masked_mean(-log_probs, mask)


def _token_mean(loss_mat: Tensor, valid: Tensor) -> Tensor:
    # sum_{b,t} L[b,t] m[b,t] / max(sum m, 1)
    return _zero_invalid(loss_mat, valid).sum() / valid.sum().clamp(min=1).to(loss_mat.dtype)


def _seq_mean(per_seq: Tensor, valid: Tensor) -> Tensor:
    # Mean of a (B,) per-sequence value over the sequences with >= 1 valid token (0 when there are none).
    has_token = valid.any(dim=-1)
    return _zero_invalid(per_seq, has_token).sum() / has_token.sum().clamp(min=1).to(per_seq.dtype)


def _seq_mean_token_sum(loss_mat: Tensor, valid: Tensor) -> Tensor:
    # mean_{b: n_b > 0} sum_t L[b,t] m[b,t]
    return _seq_mean(_zero_invalid(loss_mat, valid).sum(dim=-1), valid)


def _seq_mean_token_mean(loss_mat: Tensor, valid: Tensor) -> Tensor:
    # mean_{b: n_b > 0} (sum_t L[b,t] m[b,t] / n_b)
    per_seq = _zero_invalid(loss_mat, valid).sum(dim=-1) / valid.sum(dim=-1).clamp(min=1).to(loss_mat.dtype)
    return _seq_mean(per_seq, valid)


_AGGREGATORS: dict[str, _PairFn] = {
    "token-mean": _token_mean,
    "seq-mean-token-sum": _seq_mean_token_sum,
    "seq-mean-token-mean": _seq_mean_token_mean,
}
AGG_MODES: tuple[str, ...] = tuple(_AGGREGATORS)


def aggregate_loss(loss_mat: Tensor, mask: Tensor, mode: str) -> Tensor:
    """Reduce a per-token loss to a scalar.

    loss_mat: (B, T); mask: (B, T) 0/1 or bool; n_b = sum_t mask[b, t].
    - ``token-mean``:          sum_{b,t} L m / max(sum_{b,t} m, 1)
    - ``seq-mean-token-sum``:  mean over sequences with n_b > 0 of sum_t L m
    - ``seq-mean-token-mean``: mean over sequences with n_b > 0 of (sum_t L m) / n_b
    Every mode returns 0 (still attached to the graph) when no token is valid.
    """
    aggregator = _AGGREGATORS.get(mode)
    if aggregator is None:
        raise ValueError(f"unknown loss aggregation mode {mode!r}; allowed: {', '.join(AGG_MODES)}")
    if loss_mat.dim() != 2:
        raise ValueError(f"expected loss_mat (B, T), got {tuple(loss_mat.shape)}")
    return aggregator(loss_mat, _valid(mask, loss_mat))


# ----------------------------------------------------------------------------------------------------
# KL to the reference policy
# ----------------------------------------------------------------------------------------------------


def _kl(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    return log_probs - ref_log_probs


def _abs(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    return (log_probs - ref_log_probs).abs()


def _mse(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    return 0.5 * (log_probs - ref_log_probs).square()


def _low_var_kl(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    # k3 (Schulman): d = ref - logp (clamped to [-20, 20] so exp stays finite); exp(d) - d - 1 in [-10, 10].
    d = (ref_log_probs - log_probs).clamp(min=-_LOG_RATIO_CLAMP, max=_LOG_RATIO_CLAMP)
    return (torch.exp(d) - d - 1).clamp(min=-_LOW_VAR_KL_CLAMP, max=_LOW_VAR_KL_CLAMP)


_KL_FUNCS: dict[str, _PairFn] = {
    "kl": _kl,
    "abs": _abs,
    "mse": _mse,
    "low_var_kl": _low_var_kl,
}
KL_KINDS: tuple[str, ...] = tuple(_KL_FUNCS)


def kl_penalty(log_probs: Tensor, ref_log_probs: Tensor, kind: str) -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from sampled-token log-probabilities.

    log_probs, ref_log_probs: (B, T). Returns (B, T). ``ref_log_probs`` is detached.
    - ``kl``:         logp - ref                                    (k1)
    - ``abs``:        |logp - ref|
    - ``mse``:        0.5 * (logp - ref)^2                          (k2)
    - ``low_var_kl``: d = clamp(ref - logp, -20, 20); clamp(exp(d) - d - 1, -10, 10)   (k3, as verl)
    """
    func = _KL_FUNCS.get(kind)
    if func is None:
        raise ValueError(f"unknown KL penalty kind {kind!r}; allowed: {', '.join(KL_KINDS)}")
    if log_probs.shape != ref_log_probs.shape:
        raise ValueError(
            f"log_probs {tuple(log_probs.shape)} and ref_log_probs {tuple(ref_log_probs.shape)} differ in shape"
        )
    return func(log_probs, ref_log_probs.detach())


# ----------------------------------------------------------------------------------------------------
# PPO surrogate and the full objective
# ----------------------------------------------------------------------------------------------------


def ppo_clip_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_c: float = 3.0,
    agg_mode: str = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Dual-clip PPO surrogate (verl ``compute_policy_loss``).

    log_probs: (B, T) current policy, carries the gradient; old_log_probs: (B, T) behaviour policy and
    advantages: (B, T) per token, both detached; mask: (B, T).

        log_r = clamp(logp - old, -20, 20);  r = exp(log_r)
        pg1 = -A r;  pg2 = -A clamp(r, 1 - clip_low, 1 + clip_high);  clipped = max(pg1, pg2)
        pg3 = -A clip_c;  dual = min(pg3, clipped)
        L = where(A < 0, dual, clipped);  loss = aggregate_loss(L, mask, agg_mode)

    Returns ``(loss, stats)``; stats are detached scalars over valid tokens:
    ``clip_frac`` (share with pg2 > pg1), ``dual_clip_frac`` (share with A < 0 and pg3 < clipped),
    ``approx_kl`` (masked mean of old - logp) and ``ratio_mean`` (masked mean of r).
    """
    if clip_c <= 1.0:
        raise ValueError(f"dual-clip constant clip_c must be > 1, got {clip_c}")
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip_low and clip_high must be >= 0, got {clip_low} and {clip_high}")
    shape = log_probs.shape
    if old_log_probs.shape != shape or advantages.shape != shape:
        raise ValueError(
            f"log_probs {tuple(shape)}, old_log_probs {tuple(old_log_probs.shape)} and "
            f"advantages {tuple(advantages.shape)} must have the same (B, T) shape"
        )
    valid = _valid(mask, log_probs)
    old_log_probs = old_log_probs.detach()
    advantages = advantages.detach()

    log_ratio = (log_probs - old_log_probs).clamp(min=-_LOG_RATIO_CLAMP, max=_LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    pg1 = -advantages * ratio
    pg2 = -advantages * ratio.clamp(min=1.0 - clip_low, max=1.0 + clip_high)
    clipped = torch.maximum(pg1, pg2)
    pg3 = -advantages * clip_c
    dual = torch.minimum(pg3, clipped)
    negative = advantages < 0
    loss_mat = torch.where(negative, dual, clipped)
    loss = aggregate_loss(loss_mat, valid, agg_mode)

    with torch.no_grad():
        stats = {
            "clip_frac": masked_mean((pg2 > pg1).float(), valid),
            "dual_clip_frac": masked_mean((negative & (pg3 < clipped)).float(), valid),
            "approx_kl": masked_mean(-log_ratio, valid),
            "ratio_mean": masked_mean(ratio, valid),
        }
    return loss, stats


def policy_objective(
    log_probs: Tensor,
    old_log_probs: Tensor,
    ref_log_probs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    entropy: Tensor | None,
    *,
    clip_low: float,
    clip_high: float,
    clip_c: float,
    kl_coef: float,
    kl_type: str,
    entropy_coeff: float,
    use_kl_loss: bool = True,
    agg_mode: str = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The full actor loss: PPO surrogate + KL-to-reference term - entropy bonus.

    log_probs, old_log_probs, ref_log_probs, advantages, mask, entropy: (B, T).

        total = pg_loss + kl_coef * agg(kl_penalty(logp, ref, kl_type)) - entropy_coeff * agg(entropy)

    where agg = ``aggregate_loss(., mask, agg_mode)`` and pg_loss comes from ``ppo_clip_loss``. The KL
    term is dropped when ``use_kl_loss`` is False (``ref_log_probs`` may then be None); the entropy term
    when ``entropy_coeff == 0`` (``entropy`` may then be None). ``entropy`` keeps its graph, so the bonus
    back-propagates into the logits it came from.

    Returns ``(total, stats)``: the ``ppo_clip_loss`` stats plus detached scalars ``pg_loss``, ``kl``
    (0 when the KL term is off) and ``entropy`` (0 when no entropy is given).
    """
    if kl_type not in _KL_FUNCS:
        raise ValueError(f"unknown KL penalty kind {kl_type!r}; allowed: {', '.join(KL_KINDS)}")
    if agg_mode not in _AGGREGATORS:
        raise ValueError(f"unknown loss aggregation mode {agg_mode!r}; allowed: {', '.join(AGG_MODES)}")
    if use_kl_loss and ref_log_probs is None:
        raise ValueError("use_kl_loss is True but ref_log_probs is None")
    if entropy_coeff != 0 and entropy is None:
        raise ValueError(f"entropy_coeff is {entropy_coeff} but entropy is None")

    pg_loss, stats = ppo_clip_loss(
        log_probs,
        old_log_probs,
        advantages,
        mask,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_c=clip_c,
        agg_mode=agg_mode,
    )
    total = pg_loss
    zero = torch.zeros((), dtype=pg_loss.dtype, device=pg_loss.device)

    kl_value = zero
    if use_kl_loss:
        assert ref_log_probs is not None
        kl_value = aggregate_loss(kl_penalty(log_probs, ref_log_probs, kl_type), mask, agg_mode)
        total = total + kl_coef * kl_value

    entropy_value = zero
    if entropy is not None:
        entropy_value = aggregate_loss(entropy, mask, agg_mode)
        if entropy_coeff != 0:
            total = total - entropy_coeff * entropy_value

    stats = {
        **stats,
        "pg_loss": pg_loss.detach(),
        "kl": kl_value.detach(),
        "entropy": entropy_value.detach(),
    }
    return total, stats
