"""Compression: load-balance-aware pruning, fixed-point quantization, CSC encoding, ``.lfz``.

``compress_model(model, density=..., num_pes=...)`` turns a float model into a
:class:`CompressedModel`; ``CompressedModel.save(path)`` / :func:`load` write and read the
validated ``.lfz`` artifact (``docs/lfz-format.md``).
"""

from lstmforge.compress.artifact import (
    Block,
    CompressedModel,
    FixedVector,
    SparseMatrix,
    load,
)
from lstmforge.compress.compressor import compress_model, find_blocks
from lstmforge.compress.footprint import footprint

__all__ = [
    "Block",
    "CompressedModel",
    "FixedVector",
    "SparseMatrix",
    "compress_model",
    "find_blocks",
    "footprint",
    "load",
]
