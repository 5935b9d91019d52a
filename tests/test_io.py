"""Atomic output: complete files or nothing, with ordinary permissions, numbers stay numbers."""

import json
import os

import numpy as np
import pytest

from lstmforge.io import atomic_path, write_json


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed half-way")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_only_replaced_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"


def test_written_file_has_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_write_json_keeps_numbers_as_numbers(tmp_path):
    path = write_json(
        tmp_path / "m.json",
        {
            "a": np.float32(0.5),
            "b": np.arange(3),
            "c": float("nan"),
            "d": np.int64(7),
            "e": tmp_path,
        },
    )
    data = json.loads(path.read_text())
    assert data == {"a": 0.5, "b": [0, 1, 2], "c": None, "d": 7, "e": str(tmp_path)}
