"""The sparse weight structure the simulated PEs read: rows interleaved over PEs, CSC per PE.

This is the `.lfz` layout (DESIGN.md, "The .lfz artifact"; ESE, Han et al., FPGA 2017, §4.1;
EIE, ISCA 2016, §III-B), held in :class:`lstmforge.compress.csc.PECSC` streams: PE ``p`` owns
global rows ``r`` with ``r % num_pes == p`` at local row ``r // num_pes``. A padding entry
(value 0, bridging more than 15 zero rows) costs a cycle like a real one but does no useful MAC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.compress.csc import PECSC, decode, decode_positions, encode
from lstmforge.errors import InputError


@dataclass(frozen=True)
class PEMatrix:
    """One weight matrix as the PEs of one channel hold it (one CSC stream per PE)."""

    name: str
    shape: tuple[int, int]
    pes: tuple[PECSC, ...]

    def __post_init__(self) -> None:
        for p, pe in enumerate(self.pes):
            if pe.col_ptr.shape != (self.shape[1] + 1,):
                raise InputError(
                    f"{self.name}: PE {p} col_ptr must have {self.shape[1] + 1} entries "
                    f"(columns + 1), got {pe.col_ptr.shape[0]}"
                )

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, num_pes: int) -> PEMatrix:
        """Encode a dense integer code matrix over ``num_pes`` PEs (the compressor's encoder)."""
        return cls(name, tuple(codes.shape), tuple(encode(codes, num_pes)))

    @property
    def num_pes(self) -> int:
        """Number of PEs the rows are interleaved over."""
        return len(self.pes)

    def entry_counts(self) -> np.ndarray:
        """Stored entries (padding included) per column and PE, shape [cols, num_pes]."""
        return np.stack([np.diff(pe.col_ptr.astype(np.int64)) for pe in self.pes], axis=1)

    def useful_counts(self) -> np.ndarray:
        """Nonzero weights per column and PE (the useful MACs), shape [cols, num_pes]."""
        cols = self.shape[1]
        per_pe = []
        for p, pe in enumerate(self.pes):
            _, column = decode_positions(pe, f"{self.name} PE {p}")
            per_pe.append(np.bincount(column[pe.values != 0], minlength=cols))
        return np.stack(per_pe, axis=1).astype(np.int64)

    def to_dense(self) -> np.ndarray:
        """The dense integer code matrix (decoded with the compressor's validated decoder)."""
        return decode(list(self.pes), self.shape[0], self.shape[1], self.name)

    def column_entries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per column: (global rows, integer weights) of the real entries all PEs hold for it.

        This is what one broadcast of the column makes the channel's PEs multiply.
        """
        rows, cols, vals = [], [], []
        for p, pe in enumerate(self.pes):
            position, column = decode_positions(pe, f"{self.name} PE {p}")
            real = pe.values != 0
            rows.append(position[real] * self.num_pes + p)
            cols.append(column[real])
            vals.append(pe.values[real].astype(np.int64))
        row, col, val = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        order = np.argsort(col, kind="stable")
        bounds = np.searchsorted(col[order], np.arange(self.shape[1] + 1))
        return [
            (row[order[a:b]], val[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]


@dataclass(frozen=True)
class LayerStructure:
    """One (peephole) LSTM / LSTMP layer: gate matrices (i, f, g, o rows) and the projection."""

    w_ih: PEMatrix
    w_hh: PEMatrix
    w_hr: PEMatrix | None
    peephole: bool

    def __post_init__(self) -> None:
        four_h = self.w_ih.shape[0]
        if four_h % 4 or self.w_hh.shape[0] != four_h:
            raise InputError(
                f"{self.w_ih.name}/{self.w_hh.name}: gate matrices need 4*hidden rows each, "
                f"got {self.w_ih.shape} and {self.w_hh.shape}"
            )
        if self.w_hh.shape[1] != self.output_size:
            raise InputError(
                f"{self.w_hh.name}: expected {self.output_size} columns (the recurrent state), "
                f"got {self.w_hh.shape[1]}"
            )
        if self.w_hr is not None and self.w_hr.shape[1] != self.hidden_size:
            raise InputError(f"{self.w_hr.name}: expected {self.hidden_size} columns (the cells)")
        if len({m.num_pes for m in self.matrices}) != 1:
            raise InputError(f"{self.w_ih.name}: all matrices of a layer need one PE count")

    @property
    def hidden_size(self) -> int:
        """Number of LSTM cells."""
        return self.w_ih.shape[0] // 4

    @property
    def output_size(self) -> int:
        """Size of the layer's output (projection size, or cells without projection)."""
        return self.w_hr.shape[0] if self.w_hr is not None else self.hidden_size

    @property
    def matrices(self) -> list[PEMatrix]:
        """The sparse matrices the PEs stream, in state-flow order."""
        return [m for m in (self.w_ih, self.w_hh, self.w_hr) if m is not None]
