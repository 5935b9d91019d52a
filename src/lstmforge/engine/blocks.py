"""The dataflow of each compressed block: which matrix meets which vector, step by step.

One definition per block kind, shared by the integer datapath (the hardware's arithmetic) and
the float datapath (float-sparse mode, calibration). Per LSTM layer k and time step t::

    partial = W_ih x_t + W_hh r_{t-1} + b          (each product requantized into P, then summed)
    (the input products W_ih x_t of all steps are computed before the recurrence: same values)
    m_t, c_t = cell(partial, c_{t-1})              (:mod:`lstmforge.engine.integer_datapath`)
    r_t = W_hr m_t  (LSTMP)  or  m_t

and layer k + 1 reads r_t. ConvLSTM layers lower both gate convolutions to sparse matrices
times patch vectors (:mod:`lstmforge.engine.lowering`), each with its own kernel size: the
state-to-state ``kernel_size`` and the input-to-state ``input_kernel_size`` (the same unless
the config has it), and both with the config's ``row_padding`` (``"zeros"`` unless the config
has it; ``"circular"`` wraps the rows); a Linear block is ``W x + b``.
Signals are observed (for calibration ranges and traces) under their format keys: ``input``,
``l{k}.cell``, ``l{k}.output`` and ``output``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmforge.engine.lowering import patches, to_channels_first
from lstmforge.errors import InputError


def check_lstm_state(name: str, config: dict[str, Any], batch: int, state: Any) -> None:
    """A given LSTM state must be a pair (h [L, B, R], c [L, B, H]) of arrays (or nested
    lists, tensors) of block ``name``'s configuration: an :class:`InputError` otherwise."""
    if state is None:
        return
    layers = config["num_layers"]
    expect_h = (layers, batch, config["proj_size"] or config["hidden_size"])
    expect_c = (layers, batch, config["hidden_size"])
    try:
        shapes = tuple(np.shape(part) for part in state)
    except (TypeError, ValueError, KeyError, IndexError):  # no sequence, ragged lists
        shapes = None
    if shapes != (expect_h, expect_c):
        raise InputError(
            f"engine block {name!r}: expected state (h {list(expect_h)}, c {list(expect_c)})"
        )


def initial_lstm_state(
    dp: Any,
    state: tuple[np.ndarray, np.ndarray] | None,
    k: int,
    batch: int,
    out_size: int,
    hidden: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Layer k's starting ``(h [B, P|H], c [B, H])`` on the datapath: zeros, or ``state``
    (float, as :func:`run_lstm` takes it) converted on entry."""
    if state is None:
        return dp.zeros((batch, out_size)), dp.zeros((batch, hidden))
    return dp.enter(state[0][k], f"l{k}.output"), dp.enter(state[1][k], f"l{k}.cell")


def run_lstm(
    dp: Any,
    config: dict[str, Any],
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """LSTM/LSTMP stack on x [B, T, I] (float); state ``(h0 [L, B, P|H], c0 [L, B, H])``.

    ``lengths`` [B]: steps past a sequence's length output zeros and keep its state.
    Returns float ``(y [B, T, P|H], (h_n, c_n))``.
    """
    layers, hidden, proj = config["num_layers"], config["hidden_size"], config["proj_size"]
    batch, steps = x.shape[0], x.shape[1]
    out_size = proj or hidden
    seq, src = dp.enter(x, "input"), "input"
    for t in range(steps):
        dp.step = t
        dp.observe("input", seq[:, t], "input")
    valid = None if lengths is None else (np.arange(steps)[None, :] < lengths[:, None])
    h_n, c_n = [], []
    for k in range(layers):  # layer by layer: the input products of all steps at once
        out_key = f"l{k}.output"
        h, c = initial_lstm_state(dp, state, k, batch, out_size, hidden)
        from_input = dp.matvec(f"weight_ih_l{k}", seq.reshape(batch * steps, -1), src, "pre")
        from_input = from_input.reshape(batch, steps, -1)
        outputs = []
        for t in range(steps):
            dp.step = t
            partial = from_input[:, t] + dp.matvec(f"weight_hh_l{k}", h, out_key, "pre")
            if config["bias"]:
                partial = partial + dp.bias(f"bias_l{k}", (1, -1))
            m, c_new = dp.cell(partial, c, k, "gate" if proj else out_key)
            out = dp.matvec(f"weight_hr_l{k}", m, "gate", out_key) if proj else m
            dp.observe(out_key, out, out_key)
            if valid is None:
                h, c = out, c_new
            else:  # past a sequence's end: output zero, state held
                ok = valid[:, t : t + 1]
                h, c, out = np.where(ok, out, h), np.where(ok, c_new, c), np.where(ok, out, 0)
            outputs.append(out)
        seq, src = np.stack(outputs, axis=1) if outputs else dp.zeros((batch, 0, out_size)), out_key
        h_n.append(dp.leave(h, out_key))
        c_n.append(dp.leave(c, f"l{k}.cell"))
    return dp.leave(seq, src), (np.stack(h_n), np.stack(c_n))


def run_convlstm(
    dp: Any,
    config: dict[str, Any],
    x: np.ndarray | None,
    state: list[tuple[np.ndarray, np.ndarray]] | None,
    steps: int | None = None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """ConvLSTM stack on x [B, T, Cin, H, W] (float), or without input (``x=None``) for
    ``steps`` steps from ``state`` (one ``(h, c)`` [B, Hc, H, W] per layer).

    Returns float ``(y [B, T, Hc_last, H, W], [(h, c) per layer])``.
    """
    layers, hidden, kernel = config["num_layers"], config["hidden_channels"], config["kernel_size"]
    input_kernel = config.get("input_kernel_size", kernel)  # absent: the state kernels (v1)
    row_padding = config.get("row_padding", "zeros")  # absent: zero padding (v1)
    if x is not None:
        batch, steps, frame = x.shape[0], x.shape[1], tuple(x.shape[3:])
        xs = dp.enter(x, "input")
    else:
        if state is None or steps is None:
            raise InputError("ConvLSTM without input: state and steps are required")
        batch, frame, xs = state[0][0].shape[0], tuple(state[0][0].shape[2:]), None
    if state is None:
        h = [dp.zeros((batch, hidden[k], *frame)) for k in range(layers)]
        c = [dp.zeros((batch, hidden[k], *frame)) for k in range(layers)]
    else:
        h = [dp.enter(state[k][0], f"l{k}.output") for k in range(layers)]
        c = [dp.enter(state[k][1], f"l{k}.cell") for k in range(layers)]
    rows, cols = frame
    outputs = []
    for t in range(steps):
        dp.step = t
        v, src = (None, None) if xs is None else (xs[:, t], "input")
        if v is not None:
            dp.observe("input", v, "input")
        for k in range(layers):
            out_key, ks, kx = f"l{k}.output", kernel[k], input_kernel[k]
            # the gates' sums per pixel [B * H * W, 4 Hc], added in place, then channels first
            sums = dp.matvec(
                f"weight_h_l{k}",
                patches(dp.operand(h[k], out_key), ks, row_padding),
                out_key,
                "pre",
            )
            if v is not None:
                sums += dp.matvec(
                    f"weight_x_l{k}", patches(dp.operand(v, src), kx, row_padding), src, "pre"
                )
            if config["bias"]:
                sums += dp.bias(f"bias_l{k}", (1, -1))
            partial = to_channels_first(sums, batch, rows, cols)
            h[k], c[k] = dp.cell(partial, c[k], k, out_key)
            dp.observe(out_key, h[k], out_key)
            v, src = h[k], out_key
        outputs.append(v)
    last = f"l{layers - 1}.output"
    y = np.stack([dp.leave(o, last) for o in outputs], axis=1)
    finals = [(dp.leave(h[k], f"l{k}.output"), dp.leave(c[k], f"l{k}.cell")) for k in range(layers)]
    return y, finals


def run_linear(dp: Any, config: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Linear block on x [..., in_features] (float): ``W x + b``, float [..., out_features]."""
    lead = x.shape[:-1]
    v = dp.enter(x.reshape(-1, x.shape[-1]), "input")
    dp.observe("input", v, "input")
    total = dp.matvec("weight", v, "input", "output")
    if config["bias"]:
        total = total + dp.bias("bias", (1, -1))
    y = dp.finish(total, "output", "output.sum")
    dp.observe("output", y, "output")
    # C order (the products of many vectors come as a transposed array)
    return np.ascontiguousarray(dp.leave(y, "output")).reshape(*lead, config["out_features"])
