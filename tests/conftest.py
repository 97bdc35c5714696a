"""Shared fixtures: a tiny real model (random Qwen2 + locally trained BPE tokenizer), Ray, a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hgpo_cli.models.embedded import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture()
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh `$HGPO_CACHE` for one test: what it builds (models, warm starts) cannot reach other tests."""
    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            logging_level="ERROR",
            runtime_env={
                "env_vars": {
                    "OMP_NUM_THREADS": "1",
                    "RAY_AUTH_MODE": "disabled",
                    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                    "TRANSFORMERS_VERBOSITY": "error",
                }
            },
        )
    yield ray
    ray.shutdown()
