"""numba's cached engine kernels are dropped when any engine source changes."""

from lstmforge.engine import kernel_cache


def test_cached_kernels_go_when_a_source_changes(tmp_path, monkeypatch):
    engine, cache = tmp_path / "engine", tmp_path / "engine" / "__pycache__"
    cache.mkdir(parents=True)
    (engine / "a.py").write_text("x = 1\n")
    (engine / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(kernel_cache, "ENGINE", engine)
    monkeypatch.setattr(kernel_cache, "CACHE", cache)
    monkeypatch.setattr(kernel_cache, "STAMP", cache / "engine-sources.sha256")
    kept = cache / "a.f-1.py311.nbi", cache / "a.f-1.py311.1.nbc", cache / "a.cpython-311.pyc"
    for path in kept:
        path.write_bytes(b"compiled")
    kernel_cache.drop_stale_kernels()  # no stamp yet: unknown sources, dropped
    assert [p.exists() for p in kept] == [False, False, True]
    for path in kept[:2]:
        path.write_bytes(b"compiled")
    kernel_cache.drop_stale_kernels()  # same sources: kept
    assert all(p.exists() for p in kept)
    (engine / "b.py").write_text("y = 3\n")  # a callee's module changes
    kernel_cache.drop_stale_kernels()
    assert [p.exists() for p in kept] == [False, False, True]
    assert (cache / "engine-sources.sha256").read_text() == kernel_cache.sources_digest()
