"""Keeping numba's on-disk cache of the engine's kernels in step with the engine's sources.

Numba (``cache=True``) stores each compiled kernel next to its module, in ``__pycache__``, and
reuses it while *that module's* file is unchanged. The engine's kernels call kernels of other
engine modules and compile them in (``compiled_lstm`` calls ``spmv`` and ``integer_datapath``),
so an edit of one module could leave another module's cached kernel running the old code.
:func:`drop_stale_kernels` removes the engine's cached kernels whenever any engine source
differs from the sources they were built from (a SHA-256 over all of them, kept beside the
cache). A read-only install leaves the files alone; numba then caches elsewhere by itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ENGINE = Path(__file__).parent
CACHE = ENGINE / "__pycache__"
STAMP = CACHE / "engine-sources.sha256"


def sources_digest() -> str:
    """SHA-256 of every engine module's source, in name order."""
    digest = hashlib.sha256()
    for path in sorted(ENGINE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def drop_stale_kernels() -> None:
    """Remove the cached kernels (``*.nbi``, ``*.nbc``) when the sources changed since the
    stamp was written, then write the stamp."""
    digest = sources_digest()
    try:
        if STAMP.read_text() == digest:
            return
    except OSError:
        pass  # no stamp yet: whatever is cached is of unknown sources
    try:
        for path in [*CACHE.glob("*.nbi"), *CACHE.glob("*.nbc")]:
            path.unlink(missing_ok=True)
        CACHE.mkdir(exist_ok=True)
        STAMP.write_text(digest)
    except OSError:
        pass
