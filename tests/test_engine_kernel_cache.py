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
