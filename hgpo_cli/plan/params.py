"""Parameter counts from a model shape (no weights).

With H = hidden, I = intermediate, V = vocabulary, q = heads x head_dim, kv = kv_heads x head_dim:

- embeddings: V x H
- one decoder layer: attention q_proj H x q (+ q bias), k_proj and v_proj H x kv each (+ kv bias each),
  o_proj q x H; gated MLP gate_proj and up_proj H x I, down_proj I x H; two RMSNorm weights of H.
- final RMSNorm: H; lm_head V x H unless tied to the embeddings.
- total = embeddings + layers x layer + H + (lm_head if untied).

The PPO critic's value model (AutoModelForTokenClassification, one label) is the same transformer without
the lm_head, plus a score head H x 1 with a bias: total - lm_head + H + 1.

LoRA on all linear layers of each block (peft's "all-linear", the LM head excluded) adds r x (in + out)
per projection: r x [(H + q) + 2 (H + kv) + (q + H) + 2 (H + I) + (I + H)] per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgpo_cli.plan.shapes import ModelShape


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a model. root: what FSDP2's root unit holds (embeddings, final norm, lm_head)."""

    embedding: int
    layer: int
    final_norm: int
    lm_head: int
    layers: int

    @property
    def root(self) -> int:
        return self.embedding + self.final_norm + self.lm_head

    @property
    def total(self) -> int:
        return self.root + self.layers * self.layer


def count_params(shape: ModelShape) -> ParamCounts:
    """The model's parameters by part (see the module docstring for the formulas)."""
    h, q, kv = shape.hidden, shape.q_dim, shape.kv_dim
    attention = h * q + 2 * h * kv + q * h
    if shape.qkv_bias:
        attention += q + 2 * kv
    mlp = 3 * h * shape.intermediate
    layer = attention + mlp + 2 * h
    embedding = shape.vocab * h
    return ParamCounts(
        embedding=embedding,
        layer=layer,
        final_norm=h,
        lm_head=0 if shape.tied else embedding,
        layers=shape.layers,
    )


def count_value_params(shape: ModelShape) -> int:
    """Parameters of the critic's value model built from `shape` (see the module docstring)."""
    counts = count_params(shape)
    return counts.total - counts.lm_head + shape.hidden + 1


def linear_params_per_layer(shape: ModelShape) -> int:
    """Weights of one decoder layer's seven projections (no biases, no norms): what bf16 autocast casts."""
    h, q, kv, i = shape.hidden, shape.q_dim, shape.kv_dim, shape.intermediate
    return h * q + 2 * h * kv + q * h + 3 * h * i


def lora_params_per_layer(shape: ModelShape, rank: int) -> int:
    """LoRA A and B matrices of one decoder layer (all seven projections), rank `rank`."""
    h, q, kv, i = shape.hidden, shape.q_dim, shape.kv_dim, shape.intermediate
    return rank * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h))


def trainable_params(shape: ModelShape, lora_rank: int) -> tuple[int, int]:
    """(trainable parameters per layer, trainable parameters of the root unit): the full model's when
    lora_rank is 0, else the adapters' (the root unit is then frozen)."""
    counts = count_params(shape)
    if lora_rank <= 0:
        return counts.layer, counts.root
    return lora_params_per_layer(shape, lora_rank), 0
