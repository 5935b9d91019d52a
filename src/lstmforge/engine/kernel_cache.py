"""Numba's on-disk cache of the engine's kernels, stamped with all engine sources.

Numba (``cache=True``) reuses a cached kernel while the file that defines it keeps its
modification time and size. The engine's kernels compile in kernels of other engine modules
(``compiled_lstm`` calls ``spmv`` and ``integer_datapath``), so an edit of one module would
leave another module's cached kernel running the old code. :class:`EngineSourcesLocator` makes
numba stamp every engine kernel with a SHA-256 over all engine sources instead, wherever numba
keeps the cache (beside the module, ``NUMBA_CACHE_DIR`` or the user-wide directory): a kernel
cached from other sources — also by a process still running on old ones — is stale, and is
compiled again. It wraps the locator numba would have chosen; :func:`install` puts it first in
numba's list of cache locators (``numba.core.caching.CacheImpl._locator_classes``; ``_CacheImpl``
before numba 0.68).

The digest is also part of the cache files' names: numba unpickles a kernel's index before it
compares stamps, and an index written by other sources can name a class those sources no
longer have (an AttributeError from inside numba, not a recompile). Before it writes, the
locator removes the engine's cache files that other sources (or a release without the digest
in its names) left in that directory.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from numba.core import caching

ENGINE = Path(__file__).resolve().parent
# numba's cache internals (CacheImpl was _CacheImpl before numba 0.68); if a later numba moves
# them, install() does nothing and numba's own stamps apply
CACHE_IMPL = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
LOCATOR_BASE = getattr(caching, "_CacheLocator", object)
DIGEST_CHARS = 16  # of the digest, in the file names
# numba's file names: "<module>.<qualname>-<disambiguator>.py<version><abi flags>.nbi" (the
# index) and "....<n>.nbc" (data), the disambiguator being the first line number, here followed
# by "-<digest>"; numba writes each to "<name>.tmp.<random>" first, then renames it
CACHE_FILE = re.compile(
    rf"^(?P<module>\w+)\.[^-]+-\d+(?:-(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}}))?"
    r"\.py\d+\w*\.(?:nbi|\d+\.nbc)$"  # an index or a data file; not a file being written
)


@functools.lru_cache(maxsize=1)
def sources_digest() -> str | None:
    """SHA-256 of every engine module's source, in name order, read once per process (None
    where one cannot be read: numba's own stamps then apply)."""
    digest = hashlib.sha256()
    try:
        for path in sorted(ENGINE.glob("*.py")):
            if path.name.startswith(".") or not path.is_file():  # editor lock files, links
                continue
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


class EngineSourcesLocator(LOCATOR_BASE):
    """The cache location numba would choose for an engine kernel, with the engine's sources
    digest as the kernel's source stamp."""

    def __init__(self, inner: LOCATOR_BASE, stamp: str) -> None:
        self._inner = inner
        self._stamp = stamp

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()
        remove_stale_files(self._inner.get_cache_path(), self._stamp[:DIGEST_CHARS])

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> str:
        return self._stamp

    def get_disambiguator(self) -> str:
        return f"{self._inner.get_disambiguator()}-{self._stamp[:DIGEST_CHARS]}"

    @classmethod
    def from_function(cls, py_func, py_file):
        """A locator for functions defined in the engine's modules, else None."""
        if Path(py_file).resolve().parent != ENGINE or sources_digest() is None:
            return None
        for other in CACHE_IMPL._locator_classes:
            inner = None if other is cls else other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, sources_digest())
        return None


@functools.cache
def remove_stale_files(cache_path: str, digest: str) -> None:
    """Remove the engine's cache files in ``cache_path`` that carry another digest or none
    (once per directory and process; a file another process removes first is skipped)."""
    modules = {path.stem for path in ENGINE.glob("*.py")}
    try:
        for path in Path(cache_path).iterdir():
            name = CACHE_FILE.match(path.name)
            if name and name["module"] in modules and name["digest"] != digest:
                path.unlink(missing_ok=True)
    except OSError:  # unreadable directory: numba reports what it cannot write
        pass


def install() -> None:
    """Put :class:`EngineSourcesLocator` first among numba's cache locators (once)."""
    locators = getattr(CACHE_IMPL, "_locator_classes", None)
    if isinstance(locators, list) and EngineSourcesLocator not in locators:
        locators.insert(0, EngineSourcesLocator)
