"""numba's cached engine kernels are stamped with all engine sources, not only their own file."""

import os

from lstmforge.engine import kernel_cache, spmv


def test_engine_kernels_carry_the_digest_of_every_engine_source():
    impl = spmv._row_product._cache._impl  # a kernel compiled with cache=True
    locator = impl.locator
    assert isinstance(locator, kernel_cache.EngineSourcesLocator)
    assert locator.get_source_stamp() == kernel_cache.sources_digest()
    others = [c for c in kernel_cache.CACHE_IMPL._locator_classes if c is not type(locator)]
    default = next(
        found
        for c in others
        if (found := c.from_function(spmv._row_product.py_func, spmv.__file__)) is not None
    )
    assert locator.get_cache_path() == default.get_cache_path()  # where numba would put it
    assert kernel_cache.EngineSourcesLocator.from_function(len, os.__file__) is None  # not ours


def test_the_digest_follows_every_source_and_skips_lock_files(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    (tmp_path / ".#a.py").symlink_to(tmp_path / "absent")  # an editor's lock link, dangling
    monkeypatch.setattr(kernel_cache, "ENGINE", tmp_path)

    def digest():
        kernel_cache.sources_digest.cache_clear()
        return kernel_cache.sources_digest()

    try:
        first = digest()
        assert first is not None and digest() == first
        (tmp_path / "b.py").write_text("y = 3\n")  # a callee's module changes
        assert digest() != first
    finally:
        kernel_cache.sources_digest.cache_clear()


def test_cache_files_carry_the_digest_and_stale_ones_are_removed(tmp_path):
    """numba unpickles an index before it compares stamps, so an index written by other
    sources (naming a class they no longer have) must never be read: the digest is in the
    file names, and before a write the files of other digests (or none) go."""
    locator = spmv._row_product._cache._impl.locator
    digest = kernel_cache.sources_digest()[: kernel_cache.DIGEST_CHARS]
    assert locator.get_disambiguator().endswith("-" + digest)
    digits = "1234567890123456"  # a digest may be all digits
    names = {
        "spmv.tile_vector_kernel-316.py311.nbi": False,  # before digests were in the names
        "spmv.tile_vector_kernel-316.py311.1.nbc": False,
        "compiled_lstm._lstm_layer_kernel-35-0123456789abcdef.py311.nbi": False,
        f"compiled_lstm._lstm_layer_kernel-35-{digest}.py311.nbi": True,
        f"compiled_lstm._lstm_layer_kernel-35-{digest}.py311.2.nbc": True,
        "elsewhere.kernel-3.py311.nbi": True,  # not an engine module
        # being written by a process on other sources: it renames the file when done
        "spmv.tile_vector_kernel-316-0123456789abcdef.py311.nbi.tmp.cba364738b6f4f8b": True,
        "spmv.tile_vector_kernel-316.py311.1.nbc.tmp.0a1b2c3d": True,
        "notes.txt": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"")
    kernel_cache.remove_stale_files(str(tmp_path), digest)
    assert {p.name for p in tmp_path.iterdir()} == {n for n, kept in names.items() if kept}
    (tmp_path / f"spmv.f-12-{digits}.py311.nbi").write_bytes(b"")
    kernel_cache.remove_stale_files(str(tmp_path), digits)
    assert (tmp_path / f"spmv.f-12-{digits}.py311.nbi").exists()
