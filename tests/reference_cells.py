"""Deliberately naive reference implementations of the recurrent cells, written from the papers.

Nothing here shares code with :mod:`lstmforge.nn`: every sequence, time step and gate is an
explicit loop, in float64.

- :func:`reference_lstm`: peephole LSTM / LSTMP (Gers et al. 2002; Sak et al. 2014, eq. 1-7),
  one sequence and one step at a time, one gate at a time, in torch float64 so that autograd
  through it gives reference gradients. Variable lengths are handled by running each sequence
  only over its own valid steps (the backward direction walks them from the last valid step).
- :func:`reference_convlstm`: ConvLSTM (Shi et al. 2015, eq. 3) in NumPy, with every
  convolution computed per (output channel, input channel) by ``scipy.signal.correlate2d``
  (mode ``"same"``, zero fill) -- an oracle independent of torch's convolution.
- :func:`reference_convlstm_steps`: the same ConvLSTM equations step by step in torch, with
  the convolution left to the caller (``conv(x, weight)``), for paddings or kernel layouts
  the scipy oracle does not cover.

Parameters are read from a ``state_dict``-like mapping with lstmforge's names; the gate rows
of the stacked matrices are in the order (i, f, g, o).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from scipy.signal import correlate2d

GATES = ("i", "f", "g", "o")


def _gate_rows(matrix: torch.Tensor, gate: str, hidden: int) -> torch.Tensor:
    k = GATES.index(gate)
    return matrix[k * hidden : (k + 1) * hidden]


def _lstm_sequence(
    xs: list[torch.Tensor],
    r: torch.Tensor,
    c: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    key: str,
    hidden: int,
    peephole: bool,
    proj: bool,
    bias: bool,
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """One direction of one layer over one sequence (a list of [I] vectors), step by step."""
    outputs = []
    for x in xs:
        pre = {}
        for gate in GATES:
            w_x = _gate_rows(params["weight_ih" + key], gate, hidden)
            w_r = _gate_rows(params["weight_hh" + key], gate, hidden)
            total = w_x @ x + w_r @ r
            if bias:
                total = total + _gate_rows(params["bias_ih" + key], gate, hidden)
                total = total + _gate_rows(params["bias_hh" + key], gate, hidden)
            pre[gate] = total
        if peephole:
            i = torch.sigmoid(pre["i"] + params["weight_ci" + key] * c)
            f = torch.sigmoid(pre["f"] + params["weight_cf" + key] * c)
        else:
            i = torch.sigmoid(pre["i"])
            f = torch.sigmoid(pre["f"])
        g = torch.tanh(pre["g"])
        c = f * c + i * g
        if peephole:
            o = torch.sigmoid(pre["o"] + params["weight_co" + key] * c)  # the NEW cell state
        else:
            o = torch.sigmoid(pre["o"])
        h = o * torch.tanh(c)
        r = params["weight_hr" + key] @ h if proj else h
        outputs.append(r)
    return outputs, r, c


def reference_lstm(
    x: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    *,
    hidden_size: int,
    num_layers: int,
    proj_size: int = 0,
    peephole: bool = True,
    bias: bool = True,
    bidirectional: bool = False,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
    lengths: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference multi-layer (bi)directional peephole LSTM/LSTMP, batch-first, no dropout.

    Returns ``(y [B, T, D*(P or H)], h_n [L*D, B, P or H], c_n [L*D, B, H])``; padded steps
    of ``y`` are zero and the final state is the one at each sequence's last valid step.
    """
    batch, steps, _ = x.shape
    directions = 2 if bidirectional else 1
    out_size = proj_size or hidden_size
    lengths = lengths if lengths is not None else [steps] * batch
    rows_y, rows_h, rows_c = [], [], []
    for b in range(batch):
        n = lengths[b]
        layer_in = [x[b, t] for t in range(n)]
        h_rows, c_rows = [], []
        for layer in range(num_layers):
            direction_outputs = []
            for direction in range(directions):
                key = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                index = layer * directions + direction
                r0 = state[0][index, b] if state is not None else x.new_zeros(out_size)
                c0 = state[1][index, b] if state is not None else x.new_zeros(hidden_size)
                seq = layer_in[::-1] if direction == 1 else layer_in
                outs, r, c = _lstm_sequence(
                    seq, r0, c0, params, key, hidden_size, peephole, proj_size > 0, bias
                )
                direction_outputs.append(outs[::-1] if direction == 1 else outs)
                h_rows.append(r)
                c_rows.append(c)
            layer_in = [torch.cat([d[t] for d in direction_outputs]) for t in range(n)]
        padding = [x.new_zeros(directions * out_size)] * (steps - n)
        rows_y.append(torch.stack(layer_in + padding))
        rows_h.append(torch.stack(h_rows))
        rows_c.append(torch.stack(c_rows))
    # h_n, c_n are indexed [layer * D + direction, batch]
    return torch.stack(rows_y), torch.stack(rows_h, dim=1), torch.stack(rows_c, dim=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _conv_same(inputs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """'Same' zero-padded cross-correlation of [Cin, H, W] with [Cout, Cin, k, k], by channel."""
    out = np.zeros((weight.shape[0], *inputs.shape[1:]))
    for o in range(weight.shape[0]):
        for i in range(weight.shape[1]):
            out[o] += correlate2d(inputs[i], weight[o, i], mode="same", boundary="fill")
    return out


def reference_convlstm(
    x: np.ndarray | None,
    params: Mapping[str, np.ndarray],
    *,
    hidden_channels: list[int],
    peephole: bool,
    bias: bool = True,
    state: list[tuple[np.ndarray, np.ndarray]] | None = None,
    steps: int | None = None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Reference multi-layer ConvLSTM, batch-first [B, T, C, H, W], float64 NumPy.

    ``x=None`` runs a model without input for ``steps`` steps from ``state``. Peepholes are
    broadcast from whatever shape they have ([Hc, H, W] or [Hc, 1, 1]).
    Returns ``(y [B, T, Hc_last, H, W], [(h, c) per layer] each [B, Hc, H, W])``.
    """
    if x is not None:
        batch, steps = x.shape[:2]
        frame = x.shape[3:]
    else:
        batch = state[0][0].shape[0]
        frame = state[0][0].shape[2:]
    y = np.zeros((batch, steps, hidden_channels[-1], *frame))
    finals = [
        (np.zeros((batch, hc, *frame)), np.zeros((batch, hc, *frame))) for hc in hidden_channels
    ]
    for b in range(batch):
        layer_in = [x[b, t] for t in range(steps)] if x is not None else [None] * steps
        for layer, hc in enumerate(hidden_channels):
            key = f"_l{layer}"
            if state is not None:
                h, c = state[layer][0][b], state[layer][1][b]
            else:
                h, c = np.zeros((hc, *frame)), np.zeros((hc, *frame))
            outputs = []
            for x_t in layer_in:
                pre = {}
                conv_h = _conv_same(h, params["weight_h" + key])
                conv_x = _conv_same(x_t, params["weight_x" + key]) if x_t is not None else 0.0
                for k, gate in enumerate(GATES):
                    pre[gate] = conv_x[k * hc : (k + 1) * hc] if x_t is not None else 0.0
                    pre[gate] = pre[gate] + conv_h[k * hc : (k + 1) * hc]
                    if bias:
                        pre[gate] = (
                            pre[gate] + params["bias" + key][k * hc : (k + 1) * hc, None, None]
                        )
                if peephole:
                    i = _sigmoid(pre["i"] + params["weight_ci" + key] * c)
                    f = _sigmoid(pre["f"] + params["weight_cf" + key] * c)
                else:
                    i = _sigmoid(pre["i"])
                    f = _sigmoid(pre["f"])
                g = np.tanh(pre["g"])
                c = f * c + i * g
                if peephole:
                    o = _sigmoid(pre["o"] + params["weight_co" + key] * c)  # the NEW cell state
                else:
                    o = _sigmoid(pre["o"])
                h = o * np.tanh(c)
                outputs.append(h)
            finals[layer][0][b] = h
            finals[layer][1][b] = c
            layer_in = outputs
        y[b] = np.stack(layer_in)
    return y, finals


def reference_convlstm_steps(
    params: Mapping[str, torch.Tensor],
    hidden_channels: list[int],
    x: torch.Tensor | None,
    state: list[tuple[torch.Tensor, torch.Tensor]],
    conv: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    steps: int | None = None,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Multi-layer ConvLSTM (Shi et al. 2015, eq. 3), batch-first [B, T, C, H, W], one step
    at a time in torch, every convolution computed as ``conv(inputs, weight)``.

    The input and forget gates peek at the previous cell state, the output gate at the new
    one. Parameters are read from ``params`` by name (``weight_x_l{k}`` absent: layer ``k``
    has no input; ``bias_l{k}`` and ``weight_c{i,f,o}_l{k}`` optional, peepholes broadcast).
    ``x=None`` runs ``steps`` steps without input from ``state`` ([(h, c) per layer]).
    Returns ``(y [B, T, Hc_last, H, W], [(h, c) per layer])``.
    """
    seq, finals = x, []
    steps = x.shape[1] if x is not None else steps
    for k, hc in enumerate(hidden_channels):
        w_x, w_h = params.get(f"weight_x_l{k}"), params[f"weight_h_l{k}"]
        bias = params.get(f"bias_l{k}")
        peep = {g: params.get(f"weight_{g}_l{k}") for g in ("ci", "cf", "co")}
        h, c = state[k]
        outputs = []
        for t in range(steps):
            gates = conv(h, w_h)
            if seq is not None and w_x is not None:
                gates = gates + conv(seq[:, t], w_x)
            if bias is not None:
                gates = gates + bias[None, :, None, None]
            i, f, g, o = gates.split(hc, dim=1)
            if peep["ci"] is not None:
                i, f = i + peep["ci"] * c, f + peep["cf"] * c
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            if peep["co"] is not None:
                o = o + peep["co"] * c  # the NEW cell state
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        seq = torch.stack(outputs, dim=1)
        finals.append((h, c))
    return seq, finals
