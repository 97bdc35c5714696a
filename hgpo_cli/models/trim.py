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
