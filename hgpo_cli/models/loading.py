"""Load a policy and its tokenizer from `model.path`: an HF id, a local folder, or `embedded:<name>`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def attention_implementation(model: Any) -> str:
    """The attention kernel a HF model runs (`config._attn_implementation`: sdpa, eager, flash_attention_2 ...;
    "" when unknown)."""
    return str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")


def resolve_model_path(path: str) -> str:
    """A local folder or HF id for `path`; builds embedded models into the cache on first use."""
    if path.startswith("embedded:"):
        from hgpo_cli.models.embedded import embedded_model_dir

        return str(embedded_model_dir(path.split(":", 1)[1]))
    local = Path(path).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise UserError(f"model folder {local} has no config.json (not an HF checkpoint)")
        return str(local)
    if path.startswith((".", "/", "~")):
        raise UserError(f"model folder not found: {path}")
    return path  # an HF hub id


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a resolved model path, with a pad token and left padding for generation."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise UserError(f"could not load the tokenizer of '{path}': {str(err).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_causal_lm(
    path: str,
    *,
    dtype: str = "float32",
    trust_remote_code: bool = False,
    gradient_checkpointing: bool = False,
    lora_rank: int = 0,
    lora_alpha: int = 32,
    trim_last_mlp: bool = False,
    trim_last_attention: bool = False,
) -> Any:
    """A causal LM from a resolved model path, optionally wrapped with LoRA adapters (peft); `trim_last_mlp`
    and `trim_last_attention`: see `hgpo_cli.models.trim`."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, DTYPES[dtype]), trust_remote_code=trust_remote_code
        )
    except OSError as err:
        raise UserError(f"could not load the model '{path}': {str(err).splitlines()[0]}") from None
    except Exception as err:
        if type(err).__name__ != "SafetensorError":  # broken weight files are the user's to fix; others are bugs
            raise
        raise UserError(f"broken model weights in {path}: {str(err).splitlines()[0]}") from None
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if trim_last_mlp:
        from hgpo_cli.models.trim import trim_last_mlp as install

        install(model)
    if trim_last_attention:
        from hgpo_cli.models.trim import trim_last_attention as install_attention

        install_attention(model)
    if lora_rank > 0:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    return model
