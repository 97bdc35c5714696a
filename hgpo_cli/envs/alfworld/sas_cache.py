"""fast-downward's PDDL-to-SAS translation of a game, kept on disk: the bulk of loading a game.

Loading an ALFWorld game translates its PDDL domain + problem to SAS twice (once per `optimize` variant),
about 0.25-0.5 s each on one core, 80% of the load; the result is a pure function of the two texts. It
is pickled (zlib level 1, a few hundred kB for a generated game) under `<cache>/alfworld/sas/`, named by
a hash of the texts, the variant and fast-downward's version, so a game's first load in any later
process (Ray env workers, evaluation, `hgpo sft`) reads it in milliseconds. `HGPO_SAS_CACHE=0` turns it
off. The files are written atomically (a temporary name, then a rename), so processes that translate
the same game at once never see half a file; an unreadable file is translated again and replaced.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def enabled() -> bool:
    return os.environ.get("HGPO_SAS_CACHE", "1") not in ("0", "false", "no")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("fast-downward-textworld", "fast-downward"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown"


def cache_path(domain: str, problem: str, optimize: bool) -> Path:
    """`<cache>/alfworld/sas/<2 hex>/<hash>.pkl.z` of one translation."""
    from hgpo_cli.paths import cache_dir

    digest = hashlib.sha256()
    for part in (_version(), str(bool(optimize)), domain, problem):
        digest.update(part.encode())
        digest.update(b"\0")
    name = digest.hexdigest()
    return cache_dir() / "alfworld" / "sas" / name[:2] / f"{name}.pkl.z"


def cached(domain: str, problem: str, optimize: bool, translate: Callable[[], Any]) -> Any:
    """The stored translation of (domain, problem, optimize), else `translate()` stored for next time."""
    if not enabled():
        return translate()
    path = cache_path(domain, problem, optimize)
    try:
        return pickle.loads(zlib.decompress(path.read_bytes()))
    except FileNotFoundError:
        pass
    except Exception:  # a truncated or foreign file: translate again and replace it
        path.unlink(missing_ok=True)
    result = translate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(zlib.compress(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), 1))
        os.replace(tmp, path)
    except OSError:  # a full or read-only cache folder costs speed, not correctness
        pass
    return result
