"""The CPU models (`embedded:hgpo-cpu-<size>`): built deterministically with no download, loadable through
the Auto classes, a tokenizer that covers the environments' text; the cached hgpo sft warm start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("alfworld")

from hgpo_cli.models.embedded import SHAPES, embedded_model_dir  # noqa: E402

# words as the generated ALFWorld games write them (observations, commands) and the prompt's own words
GAME_TEXT = (
    "You arrive at countertop 2. On the countertop 2, you see a butterknife 1, a saltshaker 3, and a "
    "spatula 2. You open the drawer 10. The drawer 10 is open. In it, you see a book 3. "
    "You pick up the book 3 from the drawer 10. You turn on the desklamp 1. Nothing happens. "
    "Your task is to: examine the book with the desklamp. Commands you may use now (exactly as written): "
    "- go to sinkbasin 1 - take apple 1 from fridge 1 - put mug 2 in/on coffeemachine 1 - heat egg 1 with "
    "microwave 1 - cool lettuce 1 with fridge 1 - clean cloth 1 with bathtubbasin 1 <action>use desklamp 1</action>"
)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_cpu_model_builds_deterministically_and_loads_through_auto_classes(private_cache: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = embedded_model_dir("hgpo-cpu-1m")
    assert first.parent == private_cache / "models" and first.name.startswith("hgpo-cpu-1m-v")
    os.environ["HGPO_CACHE"] = str(tmp_path / "other")
    second = embedded_model_dir("hgpo-cpu-1m")
    assert second != first
    a, b = _weights(first), _weights(second)
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()

    model = AutoModelForCausalLM.from_pretrained(str(first))
    tokenizer = AutoTokenizer.from_pretrained(str(first))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.hidden_size == SHAPES["cpu-1m"]["hidden_size"]
    params = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < params < 3e6  # tied embeddings: the vocabulary counted once
    assert model.config.vocab_size >= len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "look"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    # the second call finds the cache: same folder, not rebuilt
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    os.environ["HGPO_CACHE"] = str(private_cache)
    assert embedded_model_dir("hgpo-cpu-1m") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime


def test_environment_tokenizer_covers_the_game_text(private_cache: Path) -> None:
    from hgpo_cli.models.env_corpus import corpus_stats
    from hgpo_cli.models.loading import load_tokenizer

    tokenizer = load_tokenizer(str(embedded_model_dir("hgpo-cpu-1m")))
    for word in ("countertop", "desklamp", "sinkbasin", "coffeemachine", "butterknife", "saltshaker", "examine"):
        assert len(tokenizer.encode(" " + word, add_special_tokens=False)) == 1, word
    for tag in ("<action>", "</action>"):
        assert len(tokenizer.encode(tag, add_special_tokens=False)) <= 4, tag  # "<", "action", ">"
    # the test tokenizer of tiny-qwen2 spells rarer game words in pieces; this one stays near a token a word
    assert corpus_stats(tokenizer, [GAME_TEXT])["tokens_per_word"] < 1.7
    decoded = tokenizer.decode(tokenizer.encode(GAME_TEXT, add_special_tokens=False))
    assert decoded == GAME_TEXT


def test_unknown_cpu_size_is_a_user_error(private_cache: Path) -> None:
    from hgpo_cli.errors import UserError

    with pytest.raises(UserError, match="unknown embedded model 'hgpo-cpu-3m'"):
        embedded_model_dir("hgpo-cpu-3m")
