"""The sparse processing element (PE): one CSC entry per cycle, multiply, accumulate.

ESE (Han et al., FPGA 2017, §5, Fig. 7) builds its sparse matrix-vector unit from PEs in the
style of EIE (Han et al., ISCA 2016, §4): each PE owns the rows ``r % num_pes == p`` of a matrix,
stored as column-compressed (CSC) entries ``(value, rel_index)``. An activation ``a_j`` is
broadcast to all PEs through their activation queues, every column in order (ESE's activations
are dense); the pointer memory holds each column's entry count, ``pointer_bits`` wide
(:func:`lstmforge.compress.csc.pointer_bits`, what the ``.lfz`` footprint counts), and the PE
keeps their running sum ``col_ptr[j]`` (EIE's pointer read unit reads two absolute pointers
instead). It fetches the entries of column ``j`` one per cycle (EIE's sparse-matrix read unit),
decodes the relative index into a local row (``pos += rel_index + 1``, restarting at ``-1`` on
every column), and accumulates ``value * a_j`` into its accumulator buffer at that row (EIE's
arithmetic unit).
Padding entries (value 0, rel_index 15) only move the position.

Pipeline (one entry per cycle, no bubble between columns; an empty column costs one cycle):

- **column issue**: accept ``(col, value)`` from the activation stream and read the column's
  length; the column starts where the previous one ended (at 0 for column 0, which starts a
  pass over the matrix);
- **fetch**: read entry ``ptr`` of the weight memory, from ``col_ptr[j]`` to ``col_ptr[j+1]-1``;
- **decode + multiply**: ``pos``, ``value * a_j``; read the accumulator at ``pos``;
- **accumulate**: ``sat(acc[pos] + product)``, written back to ``acc[pos]``. The accumulator read
  port is transparent to this write, so back-to-back updates of one row (the last row of one
  column, the first row of the next) see each other, as EIE's bypass path does.

The accumulator buffer is reached from outside through a host port while the PE is idle:
writes preload it (zero, or the bias in product format), reads return a row one cycle later.
The weight and pointer memories have load ports and may be initialised from a CompressedModel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from lstmforge.compress.csc import PECSC, pointer_bits
from lstmforge.errors import InputError
from lstmforge.hw.rtl.fixed_point_ops import saturate


@dataclass(frozen=True)
class PEParams:
    """Geometry and word widths of one PE (EIE §4, ESE §5).

    ``rows``: local rows owned by the PE (accumulator buffer depth); ``cols``: matrix columns
    (pointer memory depth: one column length each); ``entries``: weight memory depth (CSC
    entries, padding included); ``pointer_bits``: column-length width (default: enough for a
    column of ``rows`` entries, the most a column can hold).
    """

    rows: int
    cols: int
    entries: int
    pointer_bits: int | None = None
    weight_bits: int = 12
    index_bits: int = 4
    act_bits: int = 16
    acc_bits: int = 32

    def __post_init__(self) -> None:
        if self.pointer_bits is None:
            object.__setattr__(self, "pointer_bits", max(1, self.rows.bit_length()))
        for name in (
            "rows",
            "cols",
            "entries",
            "pointer_bits",
            "weight_bits",
            "index_bits",
            "act_bits",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"PE parameter {name}: expected a positive integer")
        if self.acc_bits < self.weight_bits + self.act_bits:
            raise InputError(
                f"PE parameter acc_bits: expected at least weight_bits + act_bits = "
                f"{self.weight_bits + self.act_bits} to hold one product, got {self.acc_bits}"
            )

    @property
    def entry_layout(self) -> data.StructLayout:
        """One weight-memory word: the signed weight code and its relative row index."""
        return data.StructLayout(
            {"value": signed(self.weight_bits), "rel_index": unsigned(self.index_bits)}
        )

    @property
    def activation_layout(self) -> data.StructLayout:
        """One activation-queue word: the column index and the broadcast activation."""
        return data.StructLayout(
            {"col": unsigned(max(1, ceil_log2(self.cols))), "value": signed(self.act_bits)}
        )


def check_pe_weights(params: PEParams, weights: PECSC) -> None:
    """Raise InputError unless one PE's CSC arrays (DESIGN.md, ``.lfz``) fit ``params``."""
    nnz = len(weights.values)
    if len(weights.rel_index) != nnz:
        raise InputError(
            f"PE weights rel_index: expected {nnz} entries like values, got "
            f"{len(weights.rel_index)}"
        )
    if len(weights.col_ptr) != params.cols + 1:
        raise InputError(
            f"PE weights col_ptr: expected cols + 1 = {params.cols + 1} pointers, got "
            f"{len(weights.col_ptr)}"
        )
    if nnz > params.entries:
        raise InputError(
            f"PE weights values: {nnz} entries exceed the weight memory ({params.entries})"
        )
    pointers = np.asarray(weights.col_ptr, dtype=np.int64)
    if pointers[0] != 0 or pointers[-1] != nnz or np.any(np.diff(pointers) < 0):
        raise InputError(f"PE weights col_ptr: expected non-decreasing pointers from 0 to {nnz}")
    if nnz and pointer_bits([weights]) > params.pointer_bits:
        raise InputError(
            f"PE weights col_ptr: a column of {int(np.diff(pointers).max())} entries needs more "
            f"than pointer_bits={params.pointer_bits}"
        )
    lo, hi = -(1 << (params.weight_bits - 1)), (1 << (params.weight_bits - 1)) - 1
    if nnz and (int(np.min(weights.values)) < lo or int(np.max(weights.values)) > hi):
        raise InputError(
            f"PE weights values: expected signed {params.weight_bits}-bit codes in [{lo}, {hi}]"
        )
    if nnz and int(np.max(weights.rel_index)) >= 1 << params.index_bits:
        raise InputError(f"PE weights rel_index: expected values below {1 << params.index_bits}")


class SparsePE(wiring.Component):
    """One ESE/EIE processing element: sparse column-by-column multiply-accumulate (ESE §5).

    Members:

    - ``act``: activation queue (stream of ``{col, value}``), one column per accepted word;
    - ``busy``: a column or an entry is still in the pipeline;
    - ``acc_addr``, ``acc_we``, ``acc_wdata``, ``acc_rdata``: host access to the accumulator
      buffer (use only while ``busy`` is low; reads answer one cycle later);
    - ``weight_load``, ``pointer_load``: write ports of the weight and pointer memories.
    """

    def __init__(self, params: PEParams, weights: PECSC | None = None) -> None:
        if weights is not None:
            check_pe_weights(params, weights)
        self.params = params
        self.weights = weights
        row_bits = max(1, ceil_log2(params.rows))
        super().__init__(
            {
                "act": In(stream.Signature(params.activation_layout)),
                "busy": Out(1),
                "acc_addr": In(row_bits),
                "acc_we": In(1),
                "acc_wdata": In(signed(params.acc_bits)),
                "acc_rdata": Out(signed(params.acc_bits)),
                "weight_load": In(
                    wiring.Signature(
                        {
                            "en": Out(1),
                            "addr": Out(max(1, ceil_log2(params.entries))),
                            "data": Out(params.entry_layout),
                        }
                    )
                ),
                "pointer_load": In(
                    wiring.Signature(
                        {
                            "en": Out(1),
                            "addr": Out(max(1, ceil_log2(params.cols))),
                            "data": Out(unsigned(params.pointer_bits)),
                        }
                    )
                ),
            }
        )

    def _initial_contents(self) -> tuple[list[dict[str, int]], list[int]]:
        """Weight-memory and pointer-memory (column lengths) contents (empty matrix if none)."""
        if self.weights is None:
            return [], [0] * self.params.cols
        entries = [
            {"value": int(v), "rel_index": int(z)}
            for v, z in zip(self.weights.values, self.weights.rel_index, strict=True)
        ]
        return entries, [int(n) for n in np.diff(self.weights.col_ptr)]

    def elaborate(self, platform) -> Module:
        p = self.params
        m = Module()
        entry_init, pointer_init = self._initial_contents()

        m.submodules.weight_mem = weight_mem = Memory(
            shape=p.entry_layout, depth=p.entries, init=entry_init
        )
        m.submodules.pointer_mem = pointer_mem = Memory(
            shape=unsigned(p.pointer_bits), depth=p.cols, init=pointer_init
        )
        m.submodules.acc_mem = acc_mem = Memory(shape=signed(p.acc_bits), depth=p.rows, init=[])

        weight_wr = weight_mem.write_port()
        weight_rd = weight_mem.read_port()
        pointer_wr = pointer_mem.write_port()
        length_rd = pointer_mem.read_port()
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))

        m.d.comb += [
            weight_wr.en.eq(self.weight_load.en),
            weight_wr.addr.eq(self.weight_load.addr),
            weight_wr.data.eq(self.weight_load.data),
            pointer_wr.en.eq(self.pointer_load.en),
            pointer_wr.addr.eq(self.pointer_load.addr),
            pointer_wr.data.eq(self.pointer_load.data),
        ]

        # Column issue: the accepted column's length arrives one cycle later; the column
        # starts where the previous one ended (``base``), or at 0 for column 0.
        pointers_valid = Signal()
        first_column = Signal()
        column_act = Signal(signed(p.act_bits))
        base = Signal(range(p.entries + 1))
        accept = self.act.valid & self.act.ready
        m.d.comb += [length_rd.addr.eq(self.act.payload.col), length_rd.en.eq(accept)]
        m.d.sync += pointers_valid.eq(accept)
        with m.If(accept):
            m.d.sync += [
                column_act.eq(self.act.payload.value),
                first_column.eq(self.act.payload.col == 0),
            ]
        column_start = Mux(first_column, 0, base)
        column_stop = column_start + length_rd.data
        with m.If(pointers_valid):
            m.d.sync += base.eq(column_stop)

        # Fetch: walk the entries of the current column.
        streaming = Signal()
        next_ptr = Signal(range(p.entries + 1))
        end_ptr = Signal(range(p.entries + 1))
        fetch_ptr = Mux(pointers_valid, column_start, next_ptr)
        column_end = Mux(pointers_valid, column_stop, end_ptr)
        active = pointers_valid | streaming
        fetch = active & (fetch_ptr != column_end)
        last_fetch = fetch & (fetch_ptr + 1 == column_end)
        m.d.comb += [
            self.act.ready.eq(~active | ~fetch | last_fetch),
            weight_rd.addr.eq(fetch_ptr),
            weight_rd.en.eq(fetch),
        ]
        m.d.sync += streaming.eq(fetch & ~last_fetch)
        with m.If(fetch):
            m.d.sync += [next_ptr.eq(fetch_ptr + 1), end_ptr.eq(column_end)]

        # Decode + multiply: the entry read last cycle, with its column's activation.
        decode_valid = Signal()
        decode_first = Signal()
        decode_act = Signal(signed(p.act_bits))
        m.d.sync += [
            decode_valid.eq(fetch),
            decode_first.eq(pointers_valid),
            decode_act.eq(column_act),
        ]
        row_bits = len(self.acc_addr)
        pos = Signal(row_bits)
        entry = weight_rd.data
        decoded_pos = Mux(decode_first, entry.rel_index, pos + entry.rel_index + 1)
        with m.If(decode_valid):
            m.d.sync += pos.eq(decoded_pos)

        # Accumulate: read-modify-write of the accumulator row.
        acc_valid = Signal()
        acc_row = Signal(row_bits)
        product = Signal(signed(p.weight_bits + p.act_bits))
        m.d.sync += [
            acc_valid.eq(decode_valid),
            acc_row.eq(decoded_pos),
            product.eq(entry.value * decode_act),
        ]
        m.d.comb += [
            acc_rd.addr.eq(Mux(decode_valid, decoded_pos, self.acc_addr)),
            acc_rd.en.eq(1),
            self.acc_rdata.eq(acc_rd.data),
            acc_wr.addr.eq(Mux(acc_valid, acc_row, self.acc_addr)),
            acc_wr.en.eq(acc_valid | self.acc_we),
            acc_wr.data.eq(
                Mux(acc_valid, saturate(acc_rd.data + product, p.acc_bits), self.acc_wdata)
            ),
            self.busy.eq(active | decode_valid | acc_valid),
        ]
        return m
