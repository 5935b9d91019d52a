"""One ESE channel running one LSTM time step: PEs, activation queues, element-wise unit.

ESE (Han et al., FPGA 2017, §5, Fig. 7) gives each channel a set of PEs that share one
broadcast activation vector through per-PE activation queues (ActQueue), accumulate sparse
matrix-vector products, and hand the gate pre-activations to the element-wise unit, whose
results (the new hidden and cell state) flow back into the activation buffer for the next
step. This channel runs one layer of a compressed LSTM without projection, as the engine's
``run_lstm`` does (:mod:`lstmforge.engine.blocks`)::

    partial = rq_P(W_ih x_t) + rq_P(W_hh h_{t-1}) + b
    h_t, c_t = cell(partial, c_{t-1})

Each PE stores the CSC of its rows of ``[W_ih | W_hh]`` (the column lengths of ``W_hh``
follow those of ``W_ih``), so column ``j < I`` multiplies ``x_j`` and column ``I + j`` multiplies
``h_j``; the x pass issues columns ``0 … I−1`` and the h pass ``I … I+H−1``, in order, as the
PEs' running column starts need. The controller runs two passes (x, then h); each pass zeroes the accumulators, pushes
the pass's columns into the activation queues (one word per cycle while every queue has
room), waits for the PEs to drain, and reads every accumulator row back, requantizing it with
the pass's fractional width into the gate partial sums (which start at the bias). Then it
streams the elements through the element-wise unit and writes ``h_t`` back into the activation
buffer and ``c_t`` into the cell buffer. The host writes ``x_t`` (and an initial state) through
``buffer_write``, pulses ``start``, waits for ``done`` and reads results through ``read_addr``.

Simplifications against ESE: one layer per channel, no projection (LSTMP), accumulators
zeroed by the controller instead of double-buffered, buffers with asynchronous reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.compress.csc import PECSC, local_rows, pointer_bits
from lstmforge.errors import InputError
from lstmforge.hw.rtl.design import partial_bits
from lstmforge.hw.rtl.elementwise_unit import CellFormats, ElementwiseUnit
from lstmforge.hw.rtl.fixed_point_ops import requantize
from lstmforge.hw.rtl.sparse_pe import PEParams, SparsePE

QUEUE_DEPTH = 4  # activation-queue entries per PE


@dataclass(frozen=True)
class LSTMStepModel:
    """What the channel needs from a one-layer LSTM block (checked on construction)."""

    input_size: int
    hidden_size: int
    pe_weights: list[PECSC]
    pe_params: PEParams
    pass_fracs: tuple[int, int]
    bias: np.ndarray
    peephole_codes: dict[str, np.ndarray]
    cell: CellFormats

    @classmethod
    def from_block(cls, cm: CompressedModel, block: Block) -> LSTMStepModel:
        """Extract one LSTM layer without projection from ``block`` of ``cm``."""
        cfg = block.config
        if block.kind != "lstm" or cfg["num_layers"] != 1 or cfg["proj_size"]:
            raise InputError(
                f"channel: block {block.name!r}: expected a one-layer LSTM without projection"
            )
        w_ih, w_hh = block.matrices["weight_ih_l0"], block.matrices["weight_hh_l0"]
        pre = cm.activation.input_format
        fin, fout = block.formats["input"], block.formats["l0.output"]
        hidden, inputs = cfg["hidden_size"], cfg["input_size"]
        bias = (
            block.vectors["bias_l0"].codes.astype(np.int64)
            if cfg["bias"]
            else np.zeros(4 * hidden, dtype=np.int64)
        )
        if bias.size and (bias.min() < pre.min_code or bias.max() > pre.max_code):
            raise InputError(f"channel: bias_l0 codes must fit the {pre} pre-activation format")
        peepholes = {
            name: block.vectors[f"weight_{name}_l0"]
            for name in ("ci", "cf", "co")
            if f"weight_{name}_l0" in block.vectors
        }
        pe_weights = [_concatenate(a, b) for a, b in zip(w_ih.pes, w_hh.pes, strict=True)]
        params = PEParams(
            rows=local_rows(4 * hidden, cm.num_pes, 0),
            cols=inputs + hidden,
            entries=max(1, max(len(w.values) for w in pe_weights)),
            pointer_bits=pointer_bits(pe_weights),
            weight_bits=max(w_ih.fmt.bits, w_hh.fmt.bits),
            act_bits=max(fin.bits, fout.bits),
        )
        cell = CellFormats(
            cell=block.formats["l0.cell"],
            hidden=fout,
            partial_bits=partial_bits(pre),
            peepholes={name: vector.fmt for name, vector in peepholes.items()},
        )
        return cls(
            input_size=inputs,
            hidden_size=hidden,
            pe_weights=pe_weights,
            pe_params=params,
            pass_fracs=(w_ih.fmt.frac + fin.frac, w_hh.fmt.frac + fout.frac),
            bias=bias,
            peephole_codes={name: v.codes.astype(np.int64) for name, v in peepholes.items()},
            cell=cell,
        )


def _concatenate(left: PECSC, right: PECSC) -> PECSC:
    """One PE's CSC of ``[left | right]``: entries appended, right's pointers shifted."""
    return PECSC(
        values=np.concatenate([left.values, right.values]),
        rel_index=np.concatenate([left.rel_index, right.rel_index]),
        col_ptr=np.concatenate([left.col_ptr, right.col_ptr[1:] + len(left.values)]),
    )


class LSTMChannel(wiring.Component):
    """ESE channel for one LSTM time step (module docstring), bit-exact with the engine.

    Members: ``start`` (pulse), ``done`` (high from the end of a step to the next start);
    ``buffer_write`` ``{en, addr, data}`` writes the activation buffer (``x`` at ``0..I-1``,
    ``h`` at ``I..I+H-1``) when ``select`` is 0, the cell buffer when ``select`` is 1;
    ``read_addr`` selects element ``j`` of ``h`` (``read_h``) and ``c`` (``read_c``).
    """

    def __init__(self, cm: CompressedModel, block: Block) -> None:
        self.model = LSTMStepModel.from_block(cm, block)
        self.units = cm.activation_units()
        self.num_pes = cm.num_pes
        model = self.model
        vector_bits = model.pe_params.act_bits
        addr_bits = max(1, ceil_log2(model.input_size + model.hidden_size))
        super().__init__(
            {
                "start": In(1),
                "done": Out(1),
                "buffer_write": In(
                    wiring.Signature(
                        {
                            "en": Out(1),
                            "select": Out(1),
                            "addr": Out(addr_bits),
                            "data": Out(signed(max(vector_bits, model.cell.cell.bits))),
                        }
                    )
                ),
                "read_addr": In(max(1, ceil_log2(model.hidden_size))),
                "read_h": Out(signed(model.cell.hidden.bits)),
                "read_c": Out(signed(model.cell.cell.bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        model, num_pes = self.model, self.num_pes
        inputs, hidden = model.input_size, model.hidden_size
        gate_rows, local = 4 * hidden, model.pe_params.rows
        pre = self.units.config.input_format
        m = Module()

        # Buffers: activation vector [x; h], cell state, bias and peephole ROMs.
        m.submodules.vector_mem = vector_mem = Memory(
            shape=signed(model.pe_params.act_bits), depth=inputs + hidden, init=[]
        )
        m.submodules.cell_mem = cell_mem = Memory(
            shape=signed(model.cell.cell.bits), depth=hidden, init=[]
        )
        vector_host = vector_mem.write_port()
        vector_back = vector_mem.write_port()
        vector_stream = vector_mem.read_port(domain="comb")
        vector_out = vector_mem.read_port(domain="comb")
        cell_host = cell_mem.write_port()
        cell_back = cell_mem.write_port()
        cell_in = cell_mem.read_port(domain="comb")
        cell_out = cell_mem.read_port(domain="comb")
        write = self.buffer_write
        m.d.comb += [
            vector_host.en.eq(write.en & ~write.select),
            vector_host.addr.eq(write.addr),
            vector_host.data.eq(write.data),
            cell_host.en.eq(write.en & write.select),
            cell_host.addr.eq(write.addr),
            cell_host.data.eq(write.data),
            vector_out.addr.eq(inputs + self.read_addr),
            cell_out.addr.eq(self.read_addr),
            self.read_h.eq(vector_out.data),
            self.read_c.eq(cell_out.data),
        ]
        peepholes = {
            name: Array(int(v) for v in codes) for name, codes in model.peephole_codes.items()
        }

        # PEs, each behind its activation queue.
        pes, queues = [], []
        for p, weights in enumerate(model.pe_weights):
            pe = SparsePE(model.pe_params, weights)
            queue = SyncFIFO(width=len(pe.act.payload.as_value()), depth=QUEUE_DEPTH)
            m.submodules[f"pe{p}"] = pe
            m.submodules[f"queue{p}"] = queue
            m.d.comb += [
                pe.act.valid.eq(queue.r_rdy),
                pe.act.payload.eq(queue.r_data),
                queue.r_en.eq(pe.act.ready),
            ]
            pes.append(pe)
            queues.append(queue)
        all_room = Cat(q.w_rdy for q in queues).all()
        all_idle = ~Cat(*(q.r_rdy for q in queues), *(pe.busy for pe in pes)).any()

        m.submodules.cell_unit = cell_unit = ElementwiseUnit(model.cell, self.units)
        partial = Array(
            Signal(signed(model.cell.partial_bits), name=f"partial_{r}") for r in range(gate_rows)
        )

        second_pass = Signal()
        counter = Signal(range(max(inputs + hidden, local, hidden) + 2))
        column = Signal(range(inputs + hidden + 1))
        read_valid = Signal()
        read_row = Signal(range(local))
        results = Signal(range(hidden + 1))
        push = Signal()
        m.d.comb += [
            vector_stream.addr.eq(column),
            push.eq(0),
        ]
        for pe, queue in zip(pes, queues, strict=True):
            m.d.comb += [
                queue.w_data.eq(Cat(column[: len(pe.act.payload.col)], vector_stream.data)),
                queue.w_en.eq(push),
                pe.acc_wdata.eq(0),
            ]

        # Read-back: one cycle after a row address, every PE's accumulator for that row,
        # requantized with the fractional width of the pass that produced it.
        read_second = Signal()
        m.d.sync += read_valid.eq(0)
        with m.If(read_valid):
            for p, pe in enumerate(pes):
                row = read_row * num_pes + p
                first, second = (
                    requantize(pe.acc_rdata, frac, pre.frac, pre.bits) for frac in model.pass_fracs
                )
                with m.If(row < gate_rows):
                    m.d.sync += partial[row].eq(partial[row] + Mux(read_second, second, first))

        # Element-wise stream: partial sums, c_{t-1} and peepholes of element `counter`.
        element = cell_unit.x.payload
        m.d.comb += [cell_in.addr.eq(counter), cell_unit.x.valid.eq(0)]
        m.d.comb += [element[g].eq(partial[k * hidden + counter]) for k, g in enumerate("ifgo")]
        m.d.comb += element.c.eq(cell_in.data)
        for name, codes in peepholes.items():
            m.d.comb += element[f"w_{name}"].eq(codes[counter])
        m.d.comb += [
            vector_back.addr.eq(inputs + results),
            vector_back.data.eq(cell_unit.y.payload.m),
            vector_back.en.eq(cell_unit.y.valid),
            cell_back.addr.eq(results),
            cell_back.data.eq(cell_unit.y.payload.c),
            cell_back.en.eq(cell_unit.y.valid),
        ]
        with m.If(cell_unit.y.valid):
            m.d.sync += results.eq(results + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += [second_pass.eq(0), counter.eq(0), results.eq(0)]
                    m.d.sync += [partial[r].eq(int(model.bias[r])) for r in range(gate_rows)]
                    m.next = "ZERO"
            with m.State("ZERO"):
                for pe in pes:
                    m.d.comb += [pe.acc_addr.eq(counter), pe.acc_we.eq(1)]
                m.d.sync += counter.eq(counter + 1)
                with m.If(counter == local - 1):
                    m.d.sync += column.eq(Mux(second_pass, inputs, 0))
                    m.next = "STREAM"
            with m.State("STREAM"):
                last = Mux(second_pass, inputs + hidden, inputs)
                with m.If(column == last):
                    m.next = "DRAIN"
                with m.Elif(all_room):
                    m.d.comb += push.eq(1)
                    m.d.sync += column.eq(column + 1)
            with m.State("DRAIN"):
                with m.If(all_idle):
                    m.d.sync += counter.eq(0)
                    m.next = "READ"
            with m.State("READ"):
                for pe in pes:
                    m.d.comb += pe.acc_addr.eq(counter)
                m.d.sync += [
                    read_valid.eq(1),
                    read_row.eq(counter),
                    read_second.eq(second_pass),
                    counter.eq(counter + 1),
                ]
                with m.If(counter == local - 1):
                    m.d.sync += counter.eq(0)
                    with m.If(second_pass):
                        m.next = "SETTLE"
                    with m.Else():
                        m.d.sync += second_pass.eq(1)
                        m.next = "ZERO"
            with m.State("SETTLE"):
                m.next = "CELL"  # the last row's read-back lands in the partial sums
            with m.State("CELL"):
                with m.If(counter < hidden):
                    m.d.comb += cell_unit.x.valid.eq(1)
                    m.d.sync += counter.eq(counter + 1)
                with m.If(results == hidden):
                    m.next = "IDLE"
        return m
