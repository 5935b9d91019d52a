"""Per-PE compressed sparse column (CSC) encoding with 4-bit relative row indices.

Rows are interleaved over the PEs: PE p owns the global rows r with ``r % num_pes == p``, at
local row ``r // num_pes``. Each PE stores its sub-matrix column by column:

* ``values``: the signed weight codes (int16);
* ``rel_index``: uint8 in 0..15, the number of zero rows skipped before the entry;
* ``col_ptr``: int32, length cols + 1; column j's entries are ``col_ptr[j]:col_ptr[j+1]``.

A run of more than 15 zero rows is bridged by padding entries (value 0, rel_index 15), each
advancing the row position by 16. Decoding a column: ``pos = -1; for (v, z): pos += z + 1;
row[pos] = v``. This is the encoding of EIE (Han et al., ISCA 2016, §III-B) and ESE (Han et
al., FPGA 2017, §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.errors import InputError

MAX_GAP = 15  # the largest zero run one 4-bit relative index can express


@dataclass(frozen=True)
class PECSC:
    """One PE's sub-matrix in CSC form (see the module docstring)."""

    values: np.ndarray  # int16 [entries]
    rel_index: np.ndarray  # uint8 [entries]
    col_ptr: np.ndarray  # int32 [cols + 1]

    @property
    def entries(self) -> int:
        """Stored entries, padding included (the PE's work in cycles)."""
        return int(self.values.size)

    @property
    def nonzeros(self) -> int:
        """Stored entries that are real weights (value != 0)."""
        return int(np.count_nonzero(self.values))

    @property
    def padding(self) -> int:
        """Padding entries (value 0, rel_index 15)."""
        return self.entries - self.nonzeros


def local_rows(rows: int, num_pes: int, pe: int) -> int:
    """Number of global rows that PE ``pe`` owns (rows ``pe, pe + num_pes, ...``)."""
    return max(0, -(-(rows - pe) // num_pes))


def encode_pe(sub: np.ndarray) -> PECSC:
    """Encode one PE's sub-matrix [local_rows, cols] (integer codes) as CSC with padding."""
    cols = sub.shape[1]
    col, row = np.nonzero(sub.T)  # column-major order: by column, then by row
    vals = sub[row, col]
    starts = np.ones(col.size, dtype=bool)
    starts[1:] = col[1:] != col[:-1]
    previous = np.where(starts, -1, np.concatenate([[-1], row[:-1]]))
    gap = row - previous - 1
    pads = gap // (MAX_GAP + 1)
    width = pads + 1  # entries emitted per nonzero: its paddings, then itself
    end = np.cumsum(width)
    total = int(end[-1]) if end.size else 0
    values = np.zeros(total, dtype=np.int16)
    rel_index = np.full(total, MAX_GAP, dtype=np.uint8)
    values[end - 1] = vals
    rel_index[end - 1] = gap - (MAX_GAP + 1) * pads
    per_col = np.bincount(col, weights=width, minlength=cols).astype(np.int64)
    col_ptr = np.concatenate([[0], np.cumsum(per_col)]).astype(np.int32)
    return PECSC(values, rel_index, col_ptr)


def encode(matrix: np.ndarray, num_pes: int) -> list[PECSC]:
    """Split ``matrix`` [rows, cols] of integer codes over ``num_pes`` PEs and encode each."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise InputError(f"CSC encoding: expected a 2-D matrix, got shape {list(matrix.shape)}")
    if num_pes < 1:
        raise InputError(f"CSC encoding: num_pes must be >= 1, got {num_pes}")
    if matrix.size and (
        matrix.min() < np.iinfo(np.int16).min or matrix.max() > np.iinfo(np.int16).max
    ):
        raise InputError("CSC encoding: weight codes must fit in 16 bits")
    return [encode_pe(matrix[pe::num_pes]) for pe in range(num_pes)]


def pointer_bits(pes: list[PECSC]) -> int:
    """Width of one word of a matrix's pointer memory, the same in every PE.

    A PE walks its columns in order (ESE §5 broadcasts every column of the dense activation
    vector), so its pointer memory holds each column's entry count, one word per column, and
    ``col_ptr`` is their running sum (one adder, instead of EIE's two pointer reads per column,
    §III-B). The word is as wide as the longest column of any PE of the matrix needs:
    ``ceil(log2(longest + 1))`` bits, at least 1.
    """
    longest = max((int(np.diff(pe.col_ptr).max(initial=0)) for pe in pes), default=0)
    return max(1, longest.bit_length())


def decode_positions(pe: PECSC, where: str = "matrix") -> tuple[np.ndarray, np.ndarray]:
    """Local row and column of every stored entry of one PE (validating the encoding)."""
    col_ptr = pe.col_ptr.astype(np.int64)
    if (
        col_ptr.size < 1
        or col_ptr[0] != 0
        or col_ptr[-1] != pe.values.size
        or np.any(np.diff(col_ptr) < 0)
    ):
        raise InputError(f"{where}: col_ptr must rise from 0 to the number of entries")
    if pe.rel_index.size != pe.values.size:
        raise InputError(f"{where}: rel_index and values differ in length")
    if pe.rel_index.size and int(pe.rel_index.max()) > MAX_GAP:
        raise InputError(f"{where}: rel_index must be 0..{MAX_GAP}")
    if np.any((pe.values == 0) & (pe.rel_index != MAX_GAP)):
        raise InputError(f"{where}: a zero value must be a padding entry (rel_index {MAX_GAP})")
    column = np.repeat(np.arange(col_ptr.size - 1), np.diff(col_ptr))
    advance = np.cumsum(pe.rel_index.astype(np.int64) + 1)
    before = np.concatenate([[0], advance])[col_ptr[:-1]]  # advance before each column start
    position = advance - np.repeat(before, np.diff(col_ptr)) - 1
    return position, column


def decode(pes: list[PECSC], rows: int, cols: int, where: str = "matrix") -> np.ndarray:
    """Rebuild the dense int64 matrix [rows, cols] from its per-PE CSC encoding (validated)."""
    num_pes = len(pes)
    dense = np.zeros((rows, cols), dtype=np.int64)
    for p, pe in enumerate(pes):
        if pe.col_ptr.size != cols + 1:
            raise InputError(f"{where} PE {p}: col_ptr must have {cols + 1} entries")
        position, column = decode_positions(pe, f"{where} PE {p}")
        if position.size and position.max() >= local_rows(rows, num_pes, p):
            raise InputError(f"{where} PE {p}: an entry points past the PE's last row")
        real = pe.values != 0
        dense[position[real] * num_pes + p, column[real]] = pe.values[real]
    return dense
