"""The starting policy of a run: `model.path`, or its `hgpo sft` warm start when `model.sft_epochs` > 0.

With `model.sft_epochs=N` the trainer starts from the model behaviour-cloned for N epochs on the planner
walkthroughs of the *training* games (`hgpo_cli/train/sft.py`, exactly what `hgpo sft` does), and the
reference model is that warm start too. The result is cached under `<cache>/warm-start/<key>/`, the key
a hash of everything the fine-tuned weights depend on (the base model's files, the games, the prompt
settings, the SFT hyper-parameters and seed), so a second run with the same settings loads it at once.
Any model and preset may use it; nothing else in training changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hgpo_cli.paths import cache_dir, folder_lock

SFT_VERSION = 1  # bump when sft.py changes what it trains on or how


def _model_fingerprint(model_dir: str) -> str:
    """Hash of a local model folder's config, tokenizer and weight files (names, sizes, mtimes)."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return model_dir  # a hub id: its name is all we know
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
        if path.name == "config.json":
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# env settings that only choose evaluation games or checks: the warm start never sees them, so changing
# one (e.g. more held-out games) must not rebuild it
EVAL_ONLY_ENV_KEYS = ("eval_split", "generated_eval_games", "check_timeout_s")


def warm_start_key(cfg: Any, base_dir: str) -> dict[str, Any]:
    """What the SFT weights depend on, as a JSON-able dict (hashed into the cache folder's name)."""
    env = cfg.env.name
    env_data = OmegaConf.to_container(cfg.env[env], resolve=True)
    env_data = {k: v for k, v in env_data.items() if k not in EVAL_ONLY_ENV_KEYS}
    key = {
        "version": SFT_VERSION,
        "model": str(cfg.model.path),
        "model_files": _model_fingerprint(base_dir),
        "dtype": str(cfg.model.dtype),
        "env": env,
        "env_data": env_data,
        "max_steps": int(cfg.env.max_steps),
        "history_length": int(cfg.agent.history_length),
        "prompt_template": str(cfg.agent.get("prompt_template") or ""),
        "answer_format": str(cfg.agent.answer_format),
        "max_prompt_tokens": int(cfg.rollout.max_prompt_tokens),
        "epochs": int(cfg.model.sft_epochs),
        "lr": float(cfg.model.sft_lr),
        "detours": int(cfg.model.get("sft_detours", 0)),
        "prompt_loss": float(cfg.model.get("sft_prompt_loss", 0.0)),
        "micro_batch_size": int(cfg.trainer.micro_batch_size),
        "grad_clip": float(cfg.trainer.grad_clip),
        "seed": int(cfg.trainer.seed),
    }
    # only when set, so warm starts built before the option existed keep their cache folders
    if window := int(cfg.model.get("sft_length_window", 0)):
        key["length_window"] = window
    return key


def warm_start_dir(cfg: Any, base_dir: str) -> Path:
    """`<cache>/warm-start/<name>-<hash>`: the cache folder of this config's warm start."""
    key = warm_start_key(cfg, base_dir)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = str(cfg.model.path).split(":")[-1].rstrip("/").split("/")[-1] or "model"
    return cache_dir() / "warm-start" / f"{name}-sft{int(cfg.model.sft_epochs)}-{digest}"


def starting_policy(cfg: Any, say: Callable[[str], None] = lambda text: None) -> str:
    """The resolved folder (or hub id) the run starts from; builds and caches the SFT warm start once."""
    from hgpo_cli.models.loading import resolve_model_path

    base = resolve_model_path(str(cfg.model.path))
    if int(cfg.model.sft_epochs) <= 0:
        return base
    from hgpo_cli.train.sft import check_sft_config, run_sft

    check_sft_config(cfg)
    out = warm_start_dir(cfg, base)
    if (out / "sft.json").is_file():
        return str(out)
    with folder_lock(out.parent):
        if (out / "sft.json").is_file():
            return str(out)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"warm start: hgpo sft of {cfg.model.path}, {int(cfg.model.sft_epochs)} epochs (once; cached in {out})")
        report = run_sft(cfg, tmp, epochs=int(cfg.model.sft_epochs), lr=float(cfg.model.sft_lr), say=say)
        (tmp / "warm_start_key.json").write_text(json.dumps(warm_start_key(cfg, base), indent=2) + "\n")
        tmp.rename(out)
        losses = " -> ".join(f"{v:.3f}" for v in report.nll_per_epoch)
        say(f"warm start: {report.samples} replies, NLL per token {losses}, {report.seconds:.0f} s")
    return str(out)
