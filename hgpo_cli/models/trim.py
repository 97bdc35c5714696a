"""The last decoder layer's MLP only at the positions whose logits a forward keeps.

A causal LM called with `logits_to_keep=n` (HF's keyword: the log-prob passes and the update ask for the
response's n positions, `generate`'s prefill for the last one) uses the last layer's output at those n
positions only: the final norm and the LM head see nothing else. The last layer's attention still runs at
every position (its keys and values are what a KV cache keeps), but its MLP, position-wise, need not. Run
it on the kept positions alone and the logits and the cache are the same numbers (the same products, row
by row), and the gradients equal to float rounding (the backward sums the same terms in another order:
weights 1e-7 apart after two iterations of the main job), for 1 / num_layers less MLP work: about 12% of
a forward and backward of the main job's 4-layer model, measured.

The hidden states the last layer returns at the other positions are then left without their MLP term: a
call that asks for hidden states (`output_hidden_states=True`) is not trimmed.
"""

from __future__ import annotations

from typing import Any

import torch

from hgpo_cli.models.loading import attention_implementation

_MARK = "_hgpo_trimmed_last_mlp"


def last_mlp(model: torch.nn.Module) -> torch.nn.Module | None:
    """The `mlp` of the last decoder layer (the last `ModuleList` named `layers` whose items have an `mlp`;
    Llama, Qwen2, Mistral and their LoRA wrappings), or None when the model has no such layer."""
    found = None
    for name, module in model.named_modules():
        if name.split(".")[-1] == "layers" and isinstance(module, torch.nn.ModuleList) and len(module):
            mlp = getattr(module[-1], "mlp", None)
            found = mlp if isinstance(mlp, torch.nn.Module) else found
    return found


def trim_last_mlp(model: torch.nn.Module) -> bool:
    """Hook `model` (the causal LM that takes `logits_to_keep`) so that a forward with `logits_to_keep=n`
    (an int, smaller than the sequence) runs the last layer's MLP on the last n positions only, and gives
    zeros as its output elsewhere. Returns False (and hooks nothing) when no last MLP is found; installing
    twice is a no-op."""
    mlp = last_mlp(model)
    if mlp is None:
        return False
    if getattr(model, _MARK, False):
        return True
    state = {"keep": 0, "length": 0}

    def on_call(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        keep = kwargs.get("logits_to_keep", 0)
        wanted = isinstance(keep, int) and not isinstance(keep, bool) and keep > 0
        state["keep"] = keep if wanted and not kwargs.get("output_hidden_states") else 0

    def before_mlp(module: torch.nn.Module, args: tuple) -> tuple | None:
        if len(args) != 1 or args[0].dim() != 3:
            state["length"] = 0
            return None
        hidden = args[0]  # (B, L, H)
        state["length"] = hidden.shape[1]
        if 0 < state["keep"] < hidden.shape[1]:
            return (hidden[:, -state["keep"] :],)
        return None

    def after_mlp(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        missing = state["length"] - out.shape[1] if out.dim() == 3 else 0
        if missing <= 0:
            return out
        return torch.cat([out.new_zeros(out.shape[0], missing, out.shape[2]), out], dim=1)

    model.register_forward_pre_hook(on_call, with_kwargs=True)
    mlp.register_forward_pre_hook(before_mlp)
    mlp.register_forward_hook(after_mlp)
    setattr(model, _MARK, True)
    return True


# ---- the last layer's attention, too -------------------------------------------------------------------
_ATTENTION_MARK = "_hgpo_trimmed_last_attention"
_CHECKPOINT_FLAG = "_can_checkpoint_with_cache"  # transformers' GradientCheckpointingLayer reads it
_UNSET = object()


def last_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    """The last decoder layer (the last item of the last `ModuleList` named `layers`), or None."""
    found = None
    for name, module in model.named_modules():
        if name.split(".")[-1] == "layers" and isinstance(module, torch.nn.ModuleList) and len(module):
            found = module[-1]
    return found


def _rotary(attention: torch.nn.Module) -> Any:
    """`apply_rotary_pos_emb` of the attention's own modelling file (Llama, Qwen2, Mistral), or None."""
    import sys

    return getattr(sys.modules.get(type(attention).__module__), "apply_rotary_pos_emb", None)


def attention_trimmable(layer: torch.nn.Module | None, implementation: str) -> bool:
    """True when the layer is a Llama-style pre-norm decoder layer whose keys and values this module knows
    how to compute on its own: `input_layernorm`, `self_attn` with `k_proj`, `v_proj`, `head_dim`, the
    modelling file's rotary embedding, no query/key norms (Qwen3) and no sliding window, under the sdpa or
    eager attention (a boolean or additive mask of the kept rows; flash kernels take no 4D mask)."""
    attention = getattr(layer, "self_attn", None)
    if layer is None or attention is None or implementation not in ("sdpa", "eager"):
        return False
    needed = ("k_proj", "v_proj", "head_dim")
    return (
        hasattr(layer, "input_layernorm")
        and all(hasattr(attention, name) for name in needed)
        and not any(hasattr(attention, name) for name in ("k_norm", "q_norm"))
        and getattr(attention, "sliding_window", None) is None
        and _rotary(attention) is not None
    )


class _PrefixKeysValues:
    """Stands in for a KV cache in one call of the last layer's attention: `update` is handed the kept
    positions' keys and values (B, kv_heads, n, head_dim) and returns them after those of the positions
    before (B, kv_heads, L - n, head_dim), computed here from the layer's input the way the attention
    computes its own (input norm, k_proj / v_proj, rotary embedding): inside the layer's forward, so its
    weights are those the forward uses (gathered under FSDP2, wrapped under LoRA). With a real (empty)
    `cache` (a prefill) all L positions' keys and values are written to it, as the untrimmed layer would."""

    def __init__(
        self, layer: torch.nn.Module, prefix: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: Any = None
    ) -> None:
        self.layer, self.prefix, self.cos, self.sin, self.cache = layer, prefix, cos, sin, cache

    def update(self, keys: torch.Tensor, values: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        attention = self.layer.self_attn
        hidden = self.layer.input_layernorm(self.prefix)  # (B, P, H)
        shape = (*hidden.shape[:-1], -1, attention.head_dim)
        prefix_keys = attention.k_proj(hidden).view(shape).transpose(1, 2)
        prefix_values = attention.v_proj(hidden).view(shape).transpose(1, 2)
        _, prefix_keys = _rotary(attention)(prefix_keys, prefix_keys, self.cos, self.sin)
        keys, values = torch.cat([prefix_keys, keys], dim=-2), torch.cat([prefix_values, values], dim=-2)
        return self.cache.update(keys, values, *args, **kwargs) if self.cache is not None else (keys, values)


def _empty(cache: Any, layer_index: Any) -> bool:
    """True when `cache` holds nothing yet for the layer (a prefill); False when unknown."""
    try:
        return int(cache.get_seq_length(layer_index if isinstance(layer_index, int) else 0)) == 0
    except Exception:
        return False


def _kept_rows_mask(mask: Any, keep: int, length: int, like: torch.Tensor, implementation: str) -> torch.Tensor:
    """The attention mask of the last `keep` queries over all `length` keys: the given 4D mask's last rows,
    or (no mask: the causal case sdpa runs unmasked) the causal rectangle, boolean for sdpa and additive
    for eager (sdpa's own is_causal would align a short query block to the first keys, not the last)."""
    if isinstance(mask, torch.Tensor) and mask.dim() == 4:
        return mask[:, :, -keep:, :]
    allowed = torch.ones(keep, length, dtype=torch.bool, device=like.device).tril(diagonal=length - keep)
    if implementation == "sdpa":
        return allowed[None, None]
    blocked = torch.zeros(keep, length, dtype=like.dtype, device=like.device)
    return blocked.masked_fill(~allowed, torch.finfo(like.dtype).min)[None, None]


def trim_last_attention(model: torch.nn.Module) -> bool:
    """Hook `model` so that a forward with `logits_to_keep=n` (as in `trim_last_mlp`) runs its whole last
    decoder layer on the last n positions: their queries, attention, output projection, norms and MLP; the
    keys and values of the positions before are still computed (`_PrefixKeysValues`), since the kept
    queries attend to them. A forward with a KV cache is trimmed only when it fills an empty cache without
    gradients (a prefill: every position's keys and values still go to the cache); one that continues a
    cache, or asks for hidden states or attention weights, is not.

    The logits are the same numbers (the same products, row by row; bit-identical on the main job's model),
    the gradients equal to float rounding; measured 10-11% off the main job's forward and backward beyond
    the MLP trim. Returns False (and hooks nothing) when the last layer is not one `attention_trimmable`
    knows; installing twice is a no-op."""
    layer = last_layer(model)
    implementation = attention_implementation(model)
    if not attention_trimmable(layer, implementation):
        return False
    if getattr(model, _ATTENTION_MARK, False):
        return True
    state: dict[str, Any] = {"keep": 0}

    def on_call(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        keep = kwargs.get("logits_to_keep", 0)
        wanted = isinstance(keep, int) and not isinstance(keep, bool) and keep > 0
        plain = not (kwargs.get("output_hidden_states") or kwargs.get("output_attentions"))
        state["keep"] = keep if wanted and plain else 0

    def before_layer(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple | None:
        keep = state["keep"]
        hidden = args[0] if args else kwargs.get("hidden_states")
        embeddings = kwargs.get("position_embeddings")
        name = "past_key_values" if "past_key_values" in kwargs else "cache"  # the keyword of this transformers
        if not keep or not isinstance(hidden, torch.Tensor) or embeddings is None:
            return None
        cache = kwargs.get(name)
        # a real cache: a prefill without gradients only (generate's, the engine's shared prefill); a forward
        # that continues a cache or records gradients runs untrimmed
        if cache is not None and (
            torch.is_grad_enabled() or not _empty(cache, getattr(module.self_attn, "layer_idx", 0))
        ):
            return None
        length = hidden.shape[1]
        if not 0 < keep < length:
            return None
        cos, sin = embeddings  # (B or 1, L, head_dim)
        kwargs = dict(kwargs)
        kwargs.pop("hidden_states", None)
        kwargs[name] = _PrefixKeysValues(module, hidden[:, :-keep], cos[:, :-keep], sin[:, :-keep], cache)
        kwargs["position_embeddings"] = (cos[:, -keep:], sin[:, -keep:])
        kwargs["attention_mask"] = _kept_rows_mask(kwargs.get("attention_mask"), keep, length, hidden, implementation)
        if isinstance(kwargs.get("position_ids"), torch.Tensor):
            kwargs["position_ids"] = kwargs["position_ids"][:, -keep:]
        if cache is None:
            # gradient checkpointing drops a layer's cache (a real one would be written twice by the
            # recompute); this one is only read, recomputed alike: keep it for this call
            state["checkpoint_flag"] = module.__dict__.get(_CHECKPOINT_FLAG, _UNSET)
            setattr(module, _CHECKPOINT_FLAG, True)
        return (hidden[:, -keep:], *args[1:]), kwargs

    def after_layer(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], out: Any) -> None:
        previous = state.pop("checkpoint_flag", None)
        if previous is _UNSET:
            delattr(module, _CHECKPOINT_FLAG)
        elif previous is not None:
            setattr(module, _CHECKPOINT_FLAG, previous)

    model.register_forward_pre_hook(on_call, with_kwargs=True)
    layer.register_forward_pre_hook(before_layer, with_kwargs=True)
    layer.register_forward_hook(after_layer, with_kwargs=True)
    setattr(model, _ATTENTION_MARK, True)
    return True
