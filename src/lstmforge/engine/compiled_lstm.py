"""The LSTM dataflow of :func:`lstmforge.engine.blocks.run_lstm` with each layer's time loop
compiled: one numba call per layer and utterance on the integer datapath's fast backend.

Per step and sequence, :func:`_lstm_layer_kernel` does what ``run_lstm`` asks of
:class:`~lstmforge.engine.integer_datapath.IntegerDatapath` — the recurrent product
(:func:`~lstmforge.engine.spmv.window_product`, into int32 accumulators that the layer keeps
with the other work arrays) and its requantization into P plus the input product and the bias
(:func:`~lstmforge.engine.requantize_lanes.requantize_add`, in int32 lanes), the element-wise unit
(:func:`~lstmforge.engine.cell_kernel.cell_step`), the projection and its
requantization — with the same integers and the same clamp counts per site, recorded in the
order the step-by-step path records them. Steps past a sequence's length are computed (and
counted) as there, then output zero and keep the state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np

from lstmforge.engine.blocks import check_lstm_state, initial_lstm_state
from lstmforge.engine.cell_kernel import cell_buffers, cell_step
from lstmforge.engine.edge import edge_constants, quantize_kernel
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.engine.requantize_lanes import requantize_add
from lstmforge.engine.spmv import (
    CHUNK,
    FEW_VECTORS,
    _csr_kernel,
    _row_major,
    _row_pairs,
    spmv_fast,
    window_layout,
    window_product,
    window_vector_kernel,
    window_workspace,
)
from lstmforge.errors import InputError

ROW_PAD = 16  # int32 codes (a cache line) between rows of the input-product buffer


@numba.njit(cache=True)
def _lstm_layer_kernel(
    from_input, h, c, valid, w_hh, bias, cell, proj, y, first
):  # pragma: no cover
    """One layer over steps ``first`` .. ``first + S - 1`` of ``valid`` [B, T] and ``y`` [B, T, R]
    (C order), S = rows of ``from_input`` / B. ``from_input`` [B * S, at least 4H] int32 (C
    order): the requantized input products, sequence b's step first + s in row b * S + s
    (columns past 4H unused); ``h`` [B, R], ``c`` [B, H]: the state, updated in place at the
    end of the call (in between, h_{t-1} is read from the output of the sequence's latest
    valid step, and c_{t-1} and c_t in two rows of the element-wise unit's lane type that
    swap roles after a valid step); ``w_hh``: ``(windowed matrix, shift, P bits)``; ``bias``
    [4H] (P codes); ``cell``: the arguments of ``cell_kernel`` after the gates and the cell
    state, the unit running in ``cell_step``'s work arrays; ``proj``: ``(windowed matrix,
    shift, output bits)`` or None (no projection: r_t = m_t); ``y`` receives the outputs (0
    past a sequence's length).

    Returns the clamp counts (hh accumulate, hh requantize, hr accumulate, hr requantize,
    then the seven of ``cell_kernel``).
    """
    batch, gates = valid.shape[0], bias.size
    steps = from_input.shape[0] // batch
    hidden, width = gates // 4, h.shape[1]
    c_lanes, pre, idx, vals, _, m = cell_buffers(cell[0])
    # each sequence's c_{t-1} and c_t in the unit's lanes: the rows swap roles after a valid step
    c_rows = np.zeros((2, batch, c_lanes.size), dtype=c_lanes.dtype)
    c_now = np.zeros(batch, dtype=np.int64)  # the row that holds c_{t-1}
    for b in range(batch):
        c_rows[0, b, :hidden] = c[b]
    last = np.full(batch, -1, dtype=np.int64)  # each sequence's latest valid step (-1: none)
    bias32 = bias.astype(np.int32)  # P codes
    work_hh = window_workspace(w_hh[0])
    acc = work_hh[2]  # the recurrent product's accumulators (int32)
    work_hr = work_hh if proj is None else window_workspace(proj[0])
    counts = np.zeros(11, dtype=np.int64)
    for t in range(first, first + steps):
        for b in range(batch):
            h_prev = h[b] if last[b] < 0 else y[b, last[b]]
            counts[0] += window_product(w_hh[0], h_prev, work_hh)
            counts[1] += requantize_add(
                acc, from_input[b * steps + t - first], bias32, pre, w_hh[1], w_hh[2], hidden
            )
            k = c_now[b]
            cell_step(
                (c_rows[k, b], pre, idx, vals, c_rows[1 - k, b], m), *cell, counts[4:], hidden
            )
            out = y[b, t]  # r_t goes straight to the output
            if proj is None:
                out[:] = m[:hidden]
            else:
                counts[2] += window_product(proj[0], m[:hidden], work_hr)
                counts[3] += requantize_add(
                    work_hr[2], None, None, out.reshape(1, width), proj[1], proj[2], width
                )
            if valid[b, t]:
                last[b] = t
                c_now[b] = 1 - k
            else:
                out[:] = 0
    for b in range(batch):
        if last[b] >= 0:
            h[b] = y[b, last[b]]
        c[b] = c_rows[c_now[b], b, :hidden]
    return counts


@numba.njit(cache=True)
def _input_product(seq, w_ih, out):  # pragma: no cover - compiled
    """The accumulators of ``W_ih`` times the inputs seq [N, I] int64 as
    :meth:`~lstmforge.engine.integer_datapath.IntegerDatapath.matvec` forms them on the fast
    backend (a few vectors: the window kernel on each; more: the CSR kernel), into ``out``
    [N, rows] (its rows contiguous; int32 holds the 32-bit accumulators). ``w_ih``:
    ``(windowed matrix, (row_ptr, cols, vals, row_l1), row pairs)``. Returns the clamp
    count."""
    if seq.shape[0] < FEW_VECTORS:
        clamps = 0
        for v in range(seq.shape[0]):
            clamps += window_vector_kernel(w_ih[0], seq[v], out[v])
        return clamps
    row_ptr, cols, vals, row_l1 = w_ih[1]
    xt = np.ascontiguousarray(seq.T)
    return _csr_kernel(row_ptr, cols, vals, row_l1, w_ih[2], xt, out)


@numba.njit(cache=True)
def _lstm_layer_with_input(seq, w_ih, h, c, valid, w_hh, bias, cell, proj):  # pragma: no cover
    """:func:`_input_product` of ``seq`` [B, T, I] (``w_ih``: its matrix, shift and P bits)
    and :func:`_lstm_layer_kernel`, in one call, :data:`~lstmforge.engine.spmv.CHUNK` steps
    at a time (the chunk's input products stay in cache until its steps use them), in one
    buffer allocated once (a fresh one per chunk, megabytes, would be fresh pages from the
    system each time) whose rows lie :data:`ROW_PAD` codes apart more than their length
    (4H codes, often a power of two: rows a multiple of 4 KiB apart share the same few cache
    sets, and the CSR kernel's stores down a column of them evict each other) and zeros
    past them (so the whole buffer is requantized in one contiguous pass). Returns the
    outputs and the clamp counts (ih accumulate, ih requantize, then the eleven of
    :func:`_lstm_layer_kernel`)."""
    batch, steps, width = seq.shape
    y = np.empty((batch, steps, h.shape[1]), dtype=np.int64)
    counts = np.zeros(13, dtype=np.int64)
    rows = w_ih[0][1][0].size - 1
    products = np.empty((batch * min(CHUNK, steps), rows + ROW_PAD), dtype=np.int32)
    products[:, rows:] = 0
    for first in range(0, steps, CHUNK):
        last = min(first + CHUNK, steps)
        flat = np.ascontiguousarray(seq[:, first:last]).reshape(-1, width)
        chunk = products[: flat.shape[0]]
        counts[0] += _input_product(flat, w_ih[0], chunk[:, :rows])
        counts[1] += requantize_add(
            chunk.reshape(-1), None, None, chunk, w_ih[1], w_ih[2], chunk.shape[1]
        )
        counts[2:] += _lstm_layer_kernel(
            chunk,
            h,
            c,
            valid,
            w_hh,
            bias,
            cell,
            proj,
            y,
            first,
        )
    return y, counts


@numba.njit(cache=True)
def _lstm_layer_edges(
    seq, w_ih, h0, c0, edges, h_out, c_out, valid, w_hh, bias, cell, proj
):  # pragma: no cover
    """:func:`_lstm_layer_with_input` with the state crossing the edge inside the call: the
    float state ``h0`` [B, R], ``c0`` [B, H] is quantized first (``edges``: 2**frac, min
    code, max code, 2**-frac of the output format, then of the cell format; the rules of
    :func:`~lstmforge.engine.edge.quantize_fast`), and the final state is dequantized into
    ``h_out``, ``c_out``. Returns the outputs (codes), the clamp counts (h quantize,
    c quantize, then the thirteen of :func:`_lstm_layer_with_input`) and 0, or 1 / 2 where h0
    / c0 holds a value that is not finite (nothing else done)."""
    counts = np.zeros(15, dtype=np.int64)
    h = np.empty(h0.shape, dtype=np.int64)
    c = np.empty(c0.shape, dtype=np.int64)
    counts[0], finite = quantize_kernel(h0.reshape(-1), edges[0], edges[1], edges[2], h.reshape(-1))
    if not finite:
        return np.empty((0, 0, 0), dtype=np.int64), counts, 1
    counts[1], finite = quantize_kernel(c0.reshape(-1), edges[4], edges[5], edges[6], c.reshape(-1))
    if not finite:
        return np.empty((0, 0, 0), dtype=np.int64), counts, 2
    y, layer_counts = _lstm_layer_with_input(seq, w_ih, h, c, valid, w_hh, bias, cell, proj)
    counts[2:] = layer_counts
    for b in range(h.shape[0]):
        for j in range(h.shape[1]):
            h_out[b, j] = h[b, j] * edges[3]
        for j in range(c.shape[1]):
            c_out[b, j] = c[b, j] * edges[7]
    return y, counts, 0


class CompiledLayer(NamedTuple):
    """The constant arguments of one compiled layer (built once per block, see
    :func:`compiled_layers`) and the sites its clamp counts go to."""

    w_ih: tuple | None  # ((windowed, CSR arrays, row pairs), shift, P bits), or None: in Python
    w_hh: tuple  # (windowed matrix, shift, P bits)
    bias: np.ndarray  # [4H] P codes
    cell: tuple  # the arguments of cell_kernel after the gates and the cell state
    order: list  # (site, index into the cell counts) in the NumPy unit's order
    w_hr: tuple | None  # (windowed matrix, shift, output bits), or None (no projection)
    sites: tuple[str, ...]  # ih, hh, hr: accumulate and requantize sites
    edges: tuple[float, ...]  # the state's formats at the edge (see _lstm_layer_edges)
    state_sites: tuple[str, str]  # where the state's quantization clamps are counted


def _layer_args(dp: IntegerDatapath, config: dict[str, Any], k: int) -> CompiledLayer | None:
    """The constant arguments of :func:`_lstm_layer_kernel` for layer k, the cell's count
    sites, or None where the compiled layer does not cover it."""
    proj, out_key = config["proj_size"], f"l{k}.output"
    cell = dp.cell_kernel_args(k, "gate" if proj else out_key, (config["hidden_size"],))
    hh_shift = dp.requantize_shift(f"weight_hh_l{k}", out_key, "pre")
    hr_shift = dp.requantize_shift(f"weight_hr_l{k}", "gate", out_key) if proj else 0
    if cell is None or hh_shift is None or hr_shift is None:
        return None
    matrices = dp.block.matrices
    pre_bits = dp.fmt("pre").bits
    w_hh = (window_layout(matrices[f"weight_hh_l{k}"]), hh_shift, pre_bits)
    w_hr = None
    if proj:
        w_hr = (window_layout(matrices[f"weight_hr_l{k}"]), hr_shift, dp.fmt(out_key).bits)
    ih_name = f"weight_ih_l{k}"
    ih_shift = dp.requantize_shift(ih_name, "input" if k == 0 else f"l{k - 1}.output", "pre")
    w_ih = None
    if ih_shift is not None:  # else: the product and its rescale as the datapath does them
        ih = matrices[ih_name]
        w_ih = ((window_layout(ih), _row_major(ih), _row_pairs(ih)), ih_shift, pre_bits)
    bias = (
        dp.bias(f"bias_l{k}", (-1,))
        if config["bias"]
        else np.zeros(4 * config["hidden_size"], dtype=np.int64)
    )
    sites = tuple(
        dp.prefix + f"weight_{m}_l{k}.{what}" for m in ("ih", "hh", "hr") for what in SITES
    )
    args, order = cell
    bias = np.ascontiguousarray(bias, dtype=np.int64)
    cell_key = f"l{k}.cell"
    edges = (*edge_constants(dp.fmt(out_key)), *edge_constants(dp.fmt(cell_key)))
    state_sites = (dp.prefix + out_key + ".quantize", dp.prefix + cell_key + ".quantize")
    return CompiledLayer(w_ih, w_hh, bias, args, order, w_hr, sites, edges, state_sites)


SITES = ("accumulate", "requantize")


def compiled_layers(dp: IntegerDatapath, config: dict[str, Any]) -> list | None:
    """Every layer's :class:`CompiledLayer`, or None where one is not covered; built once per
    (model, block, backend) for the block's own config (kept in the datapath's constants)."""

    def build() -> list | None:
        layers = [_layer_args(dp, config, k) for k in range(config["num_layers"])]
        return None if any(layer is None for layer in layers) else layers

    if config is not dp.block.config:
        return build()
    cache = dp.constants.layers
    if "lstm" not in cache:
        cache["lstm"] = build()
    return cache["lstm"]


def run_lstm_compiled(
    dp: Any,
    config: dict[str, Any],
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """:func:`~lstmforge.engine.blocks.run_lstm` with compiled layers, or None (nothing done)
    where they do not apply: another datapath or backend, a trace, no steps or sequences, an
    activation unit or shift the kernels do not cover.

    Per call it quantizes the input and the state (compiled), makes one compiled call per
    layer (the input product included) and dequantizes; everything derived from the artifact
    comes from :func:`compiled_layers`."""
    batch, steps = x.shape[0], x.shape[1]
    if (
        not isinstance(dp, IntegerDatapath)
        or dp.spmv is not spmv_fast
        or dp.trace is not None
        or batch == 0
        or steps == 0
    ):
        return None
    layers = compiled_layers(dp, config)
    if layers is None:
        return None
    hidden, out_size = config["hidden_size"], config["proj_size"] or config["hidden_size"]
    if lengths is None:
        valid = np.ones((batch, steps), dtype=np.bool_)
    else:
        valid = np.arange(steps)[None, :] < lengths[:, None]
    seq, src = dp.enter(x, "input"), "input"
    h_n = np.empty((len(layers), batch, out_size))
    c_n = np.empty((len(layers), batch, hidden))
    counter = dp.counter
    check_lstm_state(dp.block.name, config, batch, state)  # the kernels write it in place
    for k, layer in enumerate(layers):
        out_key = f"l{k}.output"
        if layer.w_ih is not None:  # the state crosses the edge inside the call
            if state is None:
                h0, c0 = np.zeros((batch, out_size)), np.zeros((batch, hidden))
            else:
                h0 = np.ascontiguousarray(state[0][k], dtype=np.float64)
                c0 = np.ascontiguousarray(state[1][k], dtype=np.float64)
            seq, counts, status = _lstm_layer_edges(
                seq,
                layer.w_ih,
                h0,
                c0,
                layer.edges,
                h_n[k],
                c_n[k],
                valid,
                layer.w_hh,
                layer.bias,
                layer.cell,
                layer.w_hr,
            )
            if state is not None:  # recorded (and refused) as dp.enter does
                for which in range(2):
                    if status == which + 1:
                        raise InputError(
                            f"{layer.state_sites[which]}: expected finite numbers, "
                            "found NaN or infinity"
                        )
                    counter.record(layer.state_sites[which], counts[which])
            counter.record(layer.sites[0], counts[2])
            counter.record(layer.sites[1], counts[3])
            counts = counts[4:]
        else:
            h, c = initial_lstm_state(dp, state, k, batch, out_size, hidden)
            h, c = np.array(h, dtype=np.int64), np.array(c, dtype=np.int64)  # updated in place
            from_input = dp.matvec(f"weight_ih_l{k}", seq.reshape(batch * steps, -1), src, "pre")
            seq = np.empty((batch, steps, out_size), dtype=np.int64)
            counts = _lstm_layer_kernel(
                np.ascontiguousarray(from_input, dtype=np.int32),  # P codes
                h,
                c,
                valid,
                layer.w_hh,
                layer.bias,
                layer.cell,
                layer.w_hr,
                seq,
                0,
            )
            h_n[k] = dp.leave(h, out_key)
            c_n[k] = dp.leave(c, f"l{k}.cell")
        counter.record(layer.sites[2], counts[0])
        counter.record(layer.sites[3], counts[1])
        dp.record(layer.order, counts[4:])
        if layer.w_hr is not None:
            counter.record(layer.sites[4], counts[2])
            counter.record(layer.sites[5], counts[3])
        src = out_key
    return dp.leave(seq, src), (h_n, c_n)
