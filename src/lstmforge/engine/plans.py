"""What the engine derives from an artifact, built once per (CompressedModel, block, backend).

Running a block needs constants that depend only on the artifact: the activation units and
their full tables, the element-wise unit's shifts and kernel arguments, the compiled layers'
arguments (windowed layouts, requantization shifts, biases, site names). Streaming callers run one
frame per call, so :func:`block_constants` builds them on the first call and hands the same
:class:`BlockConstants` to every later one.

Artifacts are plain dataclasses, and some code replaces a block's matrices, vectors or formats
(dict assignment), its config or the model's activation description after a run. An entry
therefore remembers every object it was derived from (the model's activation config and
tables; the block's name, kind, matrices and their formats and PE lists, vectors and their
codes and formats, formats) and a copy of the block's config, and it is rebuilt as soon as any
of them is another object or the config differs. It is keyed by the identity of the model and
the block, holds them only weakly (an entry goes when either is collected) and holds the
objects it was derived from strongly, so that no identity it compares can be reused while it
exists. Writing into an artifact's arrays in place is refused (:class:`CompressedModel` makes
them read-only), so neither these constants nor the windowed and CSR copies
:mod:`lstmforge.engine.spmv` caches on each matrix can go stale that way.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.engine.activation_units import ActivationUnits


class BlockConstants:
    """The constants of one block on one backend; the dicts are filled on first use by the
    datapath (:class:`~lstmforge.engine.integer_datapath.IntegerDatapath`) and the compiled
    layers (:mod:`lstmforge.engine.compiled_lstm`)."""

    def __init__(self, cm: CompressedModel, block: Block, backend: str) -> None:
        self.backend = backend
        self.units: ActivationUnits = cm.activation_units()
        self.pre = cm.activation.input_format
        self.gate = cm.activation.output_format
        self.fused: dict[tuple, tuple | None] = {}  # element-wise kernel arguments
        self.shifts: dict[tuple[int, str], Any] = {}  # LSTMShifts per (layer, hidden key)
        self.layers: dict[str, Any] = {}  # the compiled LSTM layers' arguments


class _Entry:
    __slots__ = ("block", "cm", "config", "ids", "sources", "value")

    def __init__(self, cm, block, sources, value) -> None:
        key = (id(cm), id(block), value.backend)

        def forget(_ref: Any, key: tuple = key) -> None:
            entry = _ENTRIES.get(key)
            if entry is not None and (entry.cm() is None or entry.block() is None):
                del _ENTRIES[key]

        self.cm = weakref.ref(cm, forget)
        self.block = weakref.ref(block, forget)
        self.sources = sources
        self.ids = tuple(map(id, sources))
        self.config = copy.deepcopy(block.config)
        self.value = value


_ENTRIES: dict[tuple[int, int, str], _Entry] = {}


def _sources(cm: CompressedModel, block: Block) -> list:
    """Every object the constants are derived from (compared by identity)."""
    sources: list = [cm.activation, cm.activation_tables, block.name, block.kind]
    sources += (cm.activation_tables or {}).values()
    for matrix in block.matrices.values():
        sources += (matrix, matrix.fmt, matrix.pes)
    for vector in block.vectors.values():
        sources += (vector, vector.codes, vector.fmt)
    sources += block.formats.values()
    sources += block.matrices  # the names, in order
    sources += block.vectors
    sources += block.formats
    return sources


def block_constants(cm: CompressedModel, block: Block, backend: str) -> BlockConstants:
    """The constants of ``block`` of ``cm`` on ``backend``: cached, rebuilt when the artifact
    was changed since (see the module docstring)."""
    key = (id(cm), id(block), backend)
    sources = _sources(cm, block)
    entry = _ENTRIES.get(key)
    if (
        entry is not None
        and entry.cm() is cm
        and entry.block() is block
        and entry.ids == tuple(map(id, sources))
        and entry.config == block.config
    ):
        return entry.value
    value = BlockConstants(cm, block, backend)
    _ENTRIES[key] = _Entry(cm, block, sources, value)
    return value
