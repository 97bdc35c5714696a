"""Where the project keeps generated data and converted models (outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: `$HGPO_CACHE`, else `$XDG_CACHE_HOME/hgpo`, else `~/.cache/hgpo`."""
    if os.environ.get("HGPO_CACHE"):
        return Path(os.environ["HGPO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hgpo"
