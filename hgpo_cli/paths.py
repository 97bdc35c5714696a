"""Where the project keeps generated data and converted models (outside the repository)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: `$HGPO_CACHE`, else `$XDG_CACHE_HOME/hgpo`, else `~/.cache/hgpo`."""
    if os.environ.get("HGPO_CACHE"):
        return Path(os.environ["HGPO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hgpo"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive file lock on a folder (FOLDER/.lock): two processes never build the same cached thing
    (generated games, a warm start) at once."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
