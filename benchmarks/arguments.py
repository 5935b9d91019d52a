"""Argument types shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which
puts this directory on ``sys.path``)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1 (step, round and repeat counts)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
