"""``run``: inference of a CompressedModel, float in and out at the edges.

The input is quantized on entry into the first block's input format, every block runs on the
integer datapath (or the float one in ``float-sparse`` mode), and outputs and states are
dequantized on exit. States cross the edge as floats that are exact multiples of their format's
step, so feeding a returned state back in continues bit for bit (streaming).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.engine.blocks import check_lstm_state, run_convlstm, run_linear, run_lstm
from lstmforge.engine.compiled_lstm import run_lstm_compiled
from lstmforge.engine.fixed_point import SaturationCounter
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.errors import InputError

MODES = ("integer", "float-sparse")
BACKENDS = ("fast", "reference")


def _array(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InputError(f"{what}: expected finite numbers, found NaN or infinity")
    return array


def datapath(
    cm: CompressedModel,
    block: Block,
    mode: str = "integer",
    backend: str = "fast",
    counter: SaturationCounter | None = None,
    trace: list | None = None,
) -> IntegerDatapath | FloatDatapath:
    """The datapath that executes ``block`` in ``mode`` (see :func:`run`)."""
    if mode not in MODES:
        raise InputError(f"engine mode: expected one of {MODES}, got {mode!r}")
    if backend not in BACKENDS:
        raise InputError(f"engine backend: expected one of {BACKENDS}, got {backend!r}")
    if mode == "float-sparse":
        return FloatDatapath.from_block(block, trace)
    return IntegerDatapath(cm, block, backend, counter, trace)


def _check_lstm_input(block: Block, x: np.ndarray, state: Any) -> None:
    cfg = block.config
    if x.ndim != 3 or x.shape[2] != cfg["input_size"]:
        raise InputError(
            f"engine block {block.name!r}: expected x [B, T, {cfg['input_size']}], got {list(x.shape)}"
        )
    check_lstm_state(block.name, cfg, x.shape[0], state)


def _check_convlstm_input(block: Block, x: np.ndarray | None) -> None:
    cfg = block.config
    channels = cfg["in_channels"]
    if x is None:
        return
    if channels == 0:
        raise InputError(
            f"engine block {block.name!r}: this ConvLSTM has no input; run it with x=None, "
            "a state and steps"
        )
    frame = cfg["frame_size"] if cfg["peephole"] == "pixel" else None
    if x.ndim != 5 or x.shape[2] != channels or (frame and list(x.shape[3:]) != frame):
        where = f"[B, T, {channels}, {', '.join(map(str, frame)) if frame else 'H, W'}]"
        raise InputError(f"engine block {block.name!r}: expected x {where}, got {list(x.shape)}")


def _check_convlstm_state(block: Block, x: np.ndarray | None, state: list) -> None:
    """A ConvLSTM state: one ``(h, c)`` [B, Hc_k, H, W] per layer, matching x's B, H, W."""
    cfg = block.config
    name = f"engine block {block.name!r}"
    if not isinstance(state, (list, tuple)) or len(state) != cfg["num_layers"]:
        raise InputError(f"{name}: expected a state of {cfg['num_layers']} (h, c) pairs")
    if x is not None:
        batch, frame = x.shape[0], tuple(x.shape[3:])
    else:  # a forecaster without input: the state sets B, H and W
        first = np.shape(state[0][0]) if len(state[0]) == 2 else ()
        if len(first) != 4:
            raise InputError(f"{name}: expected layer 0 state (h, c) [B, Hc, H, W]")
        batch, frame = first[0], first[2:]
    if cfg["peephole"] == "pixel" and tuple(frame) != tuple(cfg["frame_size"]):
        raise InputError(
            f"{name}: per-pixel peepholes need {list(cfg['frame_size'])} frames, the state has "
            f"{list(frame)}"
        )
    for k, pair in enumerate(state):
        expect = (batch, cfg["hidden_channels"][k], *frame)
        if len(pair) != 2 or any(np.shape(v) != expect for v in pair):
            shapes = [list(np.shape(v)) for v in pair]
            raise InputError(
                f"{name}: layer {k} state: expected (h, c) {list(expect)}, got {shapes}"
            )


def _check_lengths(block: Block, x: np.ndarray, lengths: Any) -> np.ndarray:
    """[B] valid steps per sequence, each in 1..T (as ``lstmforge.nn.LSTM`` requires)."""
    values = np.asarray(lengths.cpu() if hasattr(lengths, "cpu") else lengths)
    if values.shape != (x.shape[0],) or not np.issubdtype(values.dtype, np.integer):
        raise InputError(
            f"engine block {block.name!r}: lengths must be {x.shape[0]} integers (one per "
            f"sequence), got {values.dtype}{list(values.shape)}"
        )
    if values.size and (values.min() < 1 or values.max() > x.shape[1]):
        raise InputError(
            f"engine block {block.name!r}: lengths must lie in 1..{x.shape[1]} (the steps of x)"
        )
    return values.astype(np.int64)


def run_block(
    cm: CompressedModel,
    block: Block,
    x: Any,
    state: Any = None,
    *,
    mode: str = "integer",
    backend: str = "fast",
    lengths: Any = None,
    steps: int | None = None,
    counter: SaturationCounter | None = None,
    trace: list | None = None,
) -> tuple[np.ndarray, Any]:
    """Run one block on batch-first float input; returns ``(y, state)`` like the float module."""
    dp = datapath(cm, block, mode, backend, counter, trace)
    if block.kind == "linear":
        x = _array(x, "engine input x")
        if x.shape[-1] != block.config["in_features"]:
            raise InputError(
                f"engine block {block.name!r}: expected x [..., {block.config['in_features']}], got {list(x.shape)}"
            )
        return run_linear(dp, block.config, x), None
    if block.kind == "lstm":
        x = _array(x, "engine input x")
        _check_lstm_input(block, x, state)
        if state is not None:
            state = (_array(state[0], "engine state h"), _array(state[1], "engine state c"))
        if lengths is not None:
            lengths = _check_lengths(block, x, lengths)
        compiled = run_lstm_compiled(dp, block.config, x, state, lengths)
        return compiled if compiled is not None else run_lstm(dp, block.config, x, state, lengths)
    x = None if x is None else _array(x, "engine input x")
    _check_convlstm_input(block, x)
    if state is not None:
        _check_convlstm_state(block, x, state)
        state = [(_array(h, "engine state h"), _array(c, "engine state c")) for h, c in state]
    return run_convlstm(dp, block.config, x, state, steps)


def run(
    cm: CompressedModel,
    x: Any,
    state: Any = None,
    *,
    mode: str = "integer",
    backend: str = "fast",
    lengths: Any = None,
    counter: SaturationCounter | None = None,
    trace: list | None = None,
) -> tuple[np.ndarray, Any]:
    """Run all blocks of ``cm`` as a chain (e.g. an LSTMP stack and its output layer).

    Args:
        x: batch-first float input ([B, T, I] for LSTM, [B, T, C, H, W] for ConvLSTM).
        state: the recurrent block's state in the float module's layout (``(h, c)`` [L, B, *]
            for LSTM, a list of ``(h, c)`` per layer for ConvLSTM); with several recurrent
            blocks, a list with one such state per recurrent block.
        mode: ``"integer"`` (the datapath) or ``"float-sparse"`` (stored weights, float math).
        backend: ``"fast"`` (numba SpMV) or ``"reference"`` (the golden per-PE loop); both give
            the same integers.
        lengths: [B] valid steps per sequence (LSTM).
        counter: receives saturation counts per site; trace: receives ``(step, site, values)``.

    Returns:
        ``(y, state)`` with y float64 and the final state in the same layout as ``state``.
    """
    recurrent = [b for b in cm.blocks if b.kind != "linear"]
    states = [state] if len(recurrent) <= 1 else list(state or [None] * len(recurrent))
    if len(states) != max(1, len(recurrent)):
        raise InputError(f"engine state: expected one state per recurrent block ({len(recurrent)})")
    finals, y = [], x
    for block in cm.blocks:
        block_state = states[len(finals)] if block.kind != "linear" else None
        y, final = run_block(
            cm,
            block,
            y,
            block_state,
            mode=mode,
            backend=backend,
            lengths=lengths,
            counter=counter,
            trace=trace,
        )
        if block.kind != "linear":
            finals.append(final)
    return y, (finals[0] if len(finals) == 1 else finals or None)
