"""The LSTM dataflow of :func:`lstmforge.engine.blocks.run_lstm` with each layer's time loop
compiled: one numba call per layer and utterance on the integer datapath's fast backend.

Per step and sequence, :func:`_lstm_layer_kernel` does what ``run_lstm`` asks of
:class:`~lstmforge.engine.integer_datapath.IntegerDatapath` — the recurrent product
(:func:`~lstmforge.engine.spmv.sell_vector_kernel`) and its requantization into P, the exact sum
with the input product and the bias, the element-wise unit
(:func:`~lstmforge.engine.integer_datapath._cell_kernel`), the projection and its
requantization — with the same integers and the same clamp counts per site, recorded in the
order the step-by-step path records them. Steps past a sequence's length are computed (and
counted) as there, then output zero and keep the state.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from lstmforge.engine.blocks import initial_lstm_state
from lstmforge.engine.integer_datapath import IntegerDatapath, _cell_kernel
from lstmforge.engine.spmv import requantize_kernel, sell_layout, sell_vector_kernel, spmv_fast


@numba.njit(cache=True)
def _lstm_layer_kernel(from_input, h, c, valid, w_hh, bias, cell, proj):  # pragma: no cover
    """One layer over all steps. ``from_input`` [B, T, 4H]: the requantized input products;
    ``h`` [B, R], ``c`` [B, H]: the state, updated in place; ``valid`` [B, T]; ``w_hh``:
    ``(SELL matrix, shift, P bits)``; ``bias`` [4H] (P codes); ``cell``: the arguments of
    ``_cell_kernel`` after the gates and the cell state; ``proj``: ``(SELL matrix, shift,
    output bits)`` or None (no projection: r_t = m_t).

    Returns the outputs [B, T, R] and the clamp counts (hh accumulate, hh requantize,
    hr accumulate, hr requantize, then the seven of ``_cell_kernel``).
    """
    batch, steps, gates = from_input.shape
    y = np.zeros((batch, steps, h.shape[1]), dtype=np.int64)
    partial = np.empty((batch, gates), dtype=np.int64)
    counts = np.zeros(11, dtype=np.int64)
    for t in range(steps):
        for b in range(batch):
            acc, k = sell_vector_kernel(w_hh[0], h[b])
            counts[0] += k
            counts[1] += requantize_kernel(acc, w_hh[1], w_hh[2])
            partial[b] = from_input[b, t] + acc + bias
        m, c_new, cell_counts = _cell_kernel(partial, c, *cell)
        counts[4:] += cell_counts
        for b in range(batch):
            if proj is None:
                out = m[b]
            else:
                out, k = sell_vector_kernel(proj[0], m[b])
                counts[2] += k
                counts[3] += requantize_kernel(out, proj[1], proj[2])
            if valid[b, t]:
                h[b] = out
                c[b] = c_new[b]
                y[b, t] = out
    return y, counts


def _layer_args(dp: IntegerDatapath, config: dict[str, Any], k: int) -> tuple | None:
    """The constant arguments of :func:`_lstm_layer_kernel` for layer k, the cell's count
    sites, or None where the compiled layer does not cover it."""
    proj, out_key = config["proj_size"], f"l{k}.output"
    cell = dp.cell_kernel_args(k, "gate" if proj else out_key, config["hidden_size"])
    hh_shift = dp.requantize_shift(f"weight_hh_l{k}", out_key, "pre")
    hr_shift = dp.requantize_shift(f"weight_hr_l{k}", "gate", out_key) if proj else 0
    if cell is None or hh_shift is None or hr_shift is None:
        return None
    matrices = dp.block.matrices
    w_hh = (sell_layout(matrices[f"weight_hh_l{k}"]), hh_shift, dp.fmt("pre").bits)
    w_hr = None
    if proj:
        w_hr = (sell_layout(matrices[f"weight_hr_l{k}"]), hr_shift, dp.fmt(out_key).bits)
    bias = (
        dp.bias(f"bias_l{k}", (-1,))
        if config["bias"]
        else np.zeros(4 * config["hidden_size"], dtype=np.int64)
    )
    return w_hh, np.ascontiguousarray(bias, dtype=np.int64), cell, w_hr


def run_lstm_compiled(
    dp: Any,
    config: dict[str, Any],
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """:func:`~lstmforge.engine.blocks.run_lstm` with compiled layers, or None (nothing done)
    where they do not apply: another datapath or backend, a trace, no steps or sequences, an
    activation unit or shift the kernels do not cover."""
    batch, steps = x.shape[0], x.shape[1]
    if (
        not isinstance(dp, IntegerDatapath)
        or dp.spmv is not spmv_fast
        or dp.trace is not None
        or batch == 0
        or steps == 0
    ):
        return None
    layer_args = [_layer_args(dp, config, k) for k in range(config["num_layers"])]
    if any(args is None for args in layer_args):
        return None
    hidden, out_size = config["hidden_size"], config["proj_size"] or config["hidden_size"]
    valid = np.ones((batch, steps), dtype=np.bool_)
    if lengths is not None:
        valid = np.arange(steps)[None, :] < lengths[:, None]
    seq, src = dp.enter(x, "input"), "input"
    h_n, c_n = [], []
    for k, (w_hh, bias, (cell, order), w_hr) in enumerate(layer_args):
        out_key = f"l{k}.output"
        h, c = initial_lstm_state(dp, state, k, batch, out_size, hidden)
        from_input = dp.matvec(f"weight_ih_l{k}", seq.reshape(batch * steps, -1), src, "pre")
        h, c = np.array(h, dtype=np.int64), np.array(c, dtype=np.int64)  # updated in place
        seq, counts = _lstm_layer_kernel(
            np.ascontiguousarray(from_input.reshape(batch, steps, -1), dtype=np.int64),
            h,
            c,
            valid,
            w_hh,
            bias,
            cell,
            w_hr,
        )
        hh, hr = dp.prefix + f"weight_hh_l{k}", dp.prefix + f"weight_hr_l{k}"
        dp.counter.record(hh + ".accumulate", counts[0])
        dp.counter.record(hh + ".requantize", counts[1])
        dp.record(order, counts[4:])
        if w_hr is not None:
            dp.counter.record(hr + ".accumulate", counts[2])
            dp.counter.record(hr + ".requantize", counts[3])
        src = out_key
        h_n.append(dp.leave(h, out_key))
        c_n.append(dp.leave(c, f"l{k}.cell"))
    return dp.leave(seq, src), (np.stack(h_n), np.stack(c_n))
