"""Model shapes as facts: what a memory plan needs of a model, read from its `config.json` alone.

No weights are read and no torch is imported. The presets' models cannot be fetched on every machine, so
their published shapes are kept here (`KNOWN_SHAPES`) and used when no `config.json` is at hand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError

# model_type -> q/k/v projections carry a bias when the config has no `attention_bias` key
QKV_BIAS_BY_TYPE = {"qwen2": True}


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer: `layers` blocks of attention (GQA) + gated MLP, RMSNorms, embeddings.

    head_dim: per-head width (q is heads x head_dim wide, k and v kv_heads x head_dim).
    qkv_bias: q/k/v projections have biases (Qwen2); o_proj and the MLP never do here.
    tied: the LM head reuses the input embedding matrix (no separate lm_head weights).
    """

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    head_dim: int
    qkv_bias: bool = False
    model_type: str = ""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _qwen2(**dims: Any) -> ModelShape:
    return ModelShape(qkv_bias=True, model_type="qwen2", **dims)


# Published shapes (the models' config.json files on the HF hub; embedded:* as this project builds them).
QWEN25_15B = _qwen2(
    layers=28, hidden=1536, intermediate=8960, heads=12, kv_heads=2, vocab=151936, tied=True, head_dim=128
)
QWEN25_7B = _qwen2(
    layers=28, hidden=3584, intermediate=18944, heads=28, kv_heads=4, vocab=152064, tied=False, head_dim=128
)
SMOLLM2_135M = ModelShape(
    layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152, tied=True, head_dim=64,
    model_type="llama",
)  # fmt: skip
# hgpo_cli/models/embedded.py SHAPES["tiny"]; the vocabulary is the size of the small local tokenizer
# (759 tokens when written); the built model's own config.json is read instead whenever it exists.
TINY_QWEN2 = _qwen2(layers=2, hidden=128, intermediate=256, heads=4, kv_heads=2, vocab=759, tied=True, head_dim=32)

KNOWN_SHAPES: dict[str, ModelShape] = {
    "Qwen/Qwen2.5-1.5B-Instruct": QWEN25_15B,
    "Qwen/Qwen2.5-1.5B": QWEN25_15B,
    "Qwen/Qwen2.5-7B-Instruct": QWEN25_7B,
    "Qwen/Qwen2.5-7B": QWEN25_7B,
    "HuggingFaceTB/SmolLM2-135M-Instruct": SMOLLM2_135M,
    "embedded:smollm2-135m-instruct": SMOLLM2_135M,
    "embedded:tiny-qwen2": TINY_QWEN2,
}


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """The shape from an HF `config.json` dict (multimodal configs: their `text_config`).

    Missing `num_key_value_heads` means plain multi-head attention; missing `head_dim` means
    hidden / heads; missing `tie_word_embeddings` means untied (the Llama/Qwen2 config default).
    """
    if "num_hidden_layers" not in config and isinstance(config.get("text_config"), dict):
        config = config["text_config"]
    required = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size")
    missing = [key for key in required if config.get(key) is None]
    if missing:
        raise UserError(f"config.json has no {', '.join(missing)}: not a decoder-only transformer the plan knows")
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    model_type = str(config.get("model_type", ""))
    bias = config.get("attention_bias")
    return ModelShape(
        layers=int(config["num_hidden_layers"]),
        hidden=hidden,
        intermediate=int(config["intermediate_size"]),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        vocab=int(config["vocab_size"]),
        tied=bool(config.get("tie_word_embeddings", False)),
        head_dim=int(config.get("head_dim") or hidden // heads),
        qkv_bias=bool(bias) if bias is not None else QKV_BIAS_BY_TYPE.get(model_type, False),
        model_type=model_type,
    )


def config_json_path(model_path: str) -> Path | None:
    """Where `model.path`'s config.json is on this machine without downloading or building anything:
    a local folder, the embedded model's cache folder, or the HF hub cache. None when it is nowhere."""
    if model_path.startswith("embedded:"):
        from hgpo_cli.paths import cache_dir

        candidate = cache_dir() / "models" / model_path.split(":", 1)[1] / "config.json"
        return candidate if candidate.is_file() else None
    local = Path(model_path).expanduser()
    if local.is_dir():
        return local / "config.json" if (local / "config.json").is_file() else None
    if local.is_file() and local.name.endswith(".json"):
        return local
    if model_path.startswith((".", "/", "~")) or model_path.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    try:
        cached = try_to_load_from_cache(model_path, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id is simply not in the cache
        return None
    return Path(cached) if isinstance(cached, str) else None


def resolve_shape(model_path: str) -> tuple[ModelShape, str]:
    """(shape, where it came from) for `model.path`: its config.json when at hand, else a known shape.

    Raises UserError (one line) when neither exists.
    """
    found = config_json_path(model_path)
    if found is not None:
        try:
            config = json.loads(found.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"could not read {found}: {err}") from None
        return shape_from_config(config), str(found)
    if model_path in KNOWN_SHAPES:
        return KNOWN_SHAPES[model_path], "known shape (published config.json, kept in hgpo_cli/plan/shapes.py)"
    known = ", ".join(sorted(KNOWN_SHAPES))
    raise UserError(
        f"no config.json for model '{model_path}' on this machine and no known shape for it "
        f"(known: {known}); give model.path a local folder with a config.json"
    )
