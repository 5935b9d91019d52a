"""``compress_model``: prune, calibrate, quantize and encode a float model into a CompressedModel.

Works on an :class:`lstmforge.nn.LSTM` / :class:`lstmforge.nn.ConvLSTM`, an ``nn.Linear``, or
any module holding them (a task's LightningModule), without retraining; the gradual
prune-retrain schedule (:mod:`lstmforge.compress.retrain`) wraps it. Steps:

1. find the compressible submodules (recurrent stacks, plus the ``nn.Linear`` output layer
   that reads the last recurrent stack, as ESE runs it on the accelerator too);
2. prune every weight matrix (load-balance-aware or plain magnitude, ESE §3);
3. calibrate activation ranges by running the pruned float model on calibration data;
4. quantize weights (per-matrix fractional width) and choose activation formats;
5. encode every matrix in per-PE CSC and record imbalance, footprint and unit errors.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstmforge.compress.artifact import Block, CompressedModel, FixedVector, SparseMatrix
from lstmforge.compress.footprint import footprint
from lstmforge.compress.host import host_digest
from lstmforge.compress.pruning import density_for, matrix_keys, pe_load, prune_mask
from lstmforge.compress.quantization import activation_formats, quantize_weights, weight_format
from lstmforge.engine.activation_units import (
    FUNCTIONS,
    ActivationConfig,
    ActivationUnits,
    unit_error,
)
from lstmforge.engine.blocks import run_convlstm, run_linear, run_lstm
from lstmforge.engine.fixed_point import format_for_range, quantize
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.errors import InputError

Calibration = torch.Tensor | tuple | Callable[[nn.Module], Any] | None


def _recurrent_classes() -> tuple[type, type]:
    from lstmforge.nn import LSTM
    from lstmforge.nn.convlstm import ConvLSTM

    return LSTM, ConvLSTM


def find_blocks(
    model: nn.Module, modules: list[str] | None = None
) -> list[tuple[str, nn.Module, str]]:
    """The submodules to compress as ``(qualified name, module, kind)``, in registration order.

    By default: every lstmforge LSTM/ConvLSTM, plus each ``nn.Linear`` registered after the last
    recurrent module whose ``in_features`` equals that module's output width. ``modules``
    names them explicitly instead. Unsupported configurations raise :class:`InputError`.
    """
    lstm_cls, conv_cls = _recurrent_classes()
    named = dict(model.named_modules())
    if modules is not None:
        missing = [m for m in modules if m not in named]
        if missing:
            raise InputError(f"modules: no submodule named {missing}")
        chosen = [(m, named[m]) for m in modules]
    else:
        chosen, last_width = [], None
        for name, module in named.items():
            if isinstance(module, (lstm_cls, conv_cls)):
                chosen.append((name, module))
                last_width = None
                if isinstance(module, lstm_cls):
                    last_width = module.proj_size or module.hidden_size
            elif (
                isinstance(module, nn.Linear)
                and last_width is not None
                and module.in_features == last_width
            ):
                chosen.append((name, module))
                last_width = None
    blocks = []
    for name, module in chosen:
        if isinstance(module, lstm_cls):
            if module.bidirectional:
                raise InputError(
                    f"{name or 'model'}: bidirectional LSTMs are not supported by the accelerator"
                )
            blocks.append((name, module, "lstm"))
        elif isinstance(module, conv_cls):
            blocks.append((name, module, "convlstm"))
        elif isinstance(module, nn.Linear):
            blocks.append((name, module, "linear"))
        else:
            raise InputError(
                f"{name}: {type(module).__name__} cannot be compressed (LSTM, ConvLSTM or Linear)"
            )
    if not blocks:
        raise InputError(
            f"{type(model).__name__}: no lstmforge LSTM/ConvLSTM (or Linear) to compress"
        )
    return blocks


def block_config(module: nn.Module, kind: str) -> dict[str, Any]:
    """The topology of a compressible module, as recorded in the manifest."""
    if kind == "linear":
        return {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "bias": module.bias is not None,
        }
    if kind == "lstm":
        return {
            "input_size": module.input_size,
            "hidden_size": module.hidden_size,
            "num_layers": module.num_layers,
            "proj_size": module.proj_size,
            "peephole": module.peephole,
            "bias": module.bias,
            "batch_first": module.batch_first,
        }
    config = {
        "in_channels": module.in_channels,
        "hidden_channels": list(module.hidden_channels),
        "kernel_size": list(module.kernel_size),
        "num_layers": module.num_layers,
        "frame_size": list(module.frame_size) if module.frame_size else None,
        "peephole": module.peephole or False,
        "bias": module.bias,
        "batch_first": module.batch_first,
    }
    # Input-to-state kernels only where they differ from the state-to-state ones (a version 2
    # artifact); equal kernels give the version 1 config, unchanged (docs/lfz-format.md).
    input_kernels = list(getattr(module, "input_kernel_size", module.kernel_size))
    if input_kernels != config["kernel_size"]:
        config["input_kernel_size"] = input_kernels
    # Circular row padding likewise only when used (version 2); zeros is version 1's padding.
    row_padding = getattr(module, "row_padding", "zeros")
    if row_padding != "zeros":
        config["row_padding"] = row_padding
    return config


def float_weights(
    module: nn.Module, kind: str
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
    """``(matrices 2-D, their source shapes, vectors)`` of a module in float64.

    LSTM biases are stored combined (``bias_l{k} = bias_ih_l{k} + bias_hh_l{k}``); convolution
    kernels are lowered to [4Hc, Cin * kx * kx] (input) and [4Hc, Hc * k * k] (state).
    """
    params = {
        n: p.detach().cpu().double().numpy() for n, p in module.named_parameters(recurse=False)
    }
    matrices, shapes, vectors = {}, {}, {}
    if kind == "linear":
        matrices["weight"], shapes["weight"] = params["weight"], params["weight"].shape
        if "bias" in params:
            vectors["bias"] = params["bias"]
        return matrices, shapes, vectors
    for name, value in params.items():
        if name.startswith(("weight_ih", "weight_hh", "weight_hr", "weight_x", "weight_h_")):
            matrices[name], shapes[name] = value.reshape(value.shape[0], -1), value.shape
        elif name.startswith(("weight_ci", "weight_cf", "weight_co")):
            vectors[name] = value
    for k in range(module.num_layers):
        if kind == "lstm" and module.bias:
            vectors[f"bias_l{k}"] = params[f"bias_ih_l{k}"] + params[f"bias_hh_l{k}"]
        elif kind == "convlstm" and module.bias:
            vectors[f"bias_l{k}"] = params[f"bias_l{k}"]
    return matrices, shapes, vectors


def _capture_inputs(
    model: nn.Module, targets: list[tuple[str, nn.Module, str]], calibration: Calibration
) -> dict[str, list]:
    """Run ``calibration`` through ``model`` and record the arguments each target receives."""
    captured: dict[str, list] = {name: [] for name, _, _ in targets}
    handles = []
    for name, module, _ in targets:

        def hook(_mod, args, kwargs, name=name):
            captured[name].append((args, kwargs))

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if callable(calibration) and not isinstance(calibration, torch.Tensor):
                calibration(model)
            elif isinstance(calibration, tuple):
                model(*calibration)
            else:
                model(calibration)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return captured


def _as_array(value: Any) -> np.ndarray | None:
    return None if value is None else value.detach().cpu().double().numpy()


def _calibrate_block(
    kind: str, config: dict, weights: dict[str, np.ndarray], calls: list
) -> dict[str, float]:
    """Ranges of every signal of one block over its captured calls (pruned float weights)."""
    dp = FloatDatapath(weights)
    for args, kwargs in calls:
        bound = list(args) + [None] * 3
        x = bound[0] if bound[0] is not None else kwargs.get("x")
        if kind == "linear":
            run_linear(dp, config, _as_array(x))
            continue
        state = kwargs.get("state", bound[1])
        lengths = None
        if kind == "lstm":
            lengths = kwargs.get("lengths", bound[2])
            if isinstance(x, PackedSequence):
                x, lengths = pad_packed_sequence(x, batch_first=True)
            elif not config["batch_first"]:
                x = x.transpose(0, 1)
            state = None if state is None else tuple(_as_array(s) for s in state)
            run_lstm(
                dp, config, _as_array(x), state, None if lengths is None else np.asarray(lengths)
            )
        else:
            steps = kwargs.get("steps", bound[2])
            if x is not None and not config["batch_first"]:
                x = x.transpose(0, 1)
            state = None if state is None else [(_as_array(h), _as_array(c)) for h, c in state]
            run_convlstm(dp, config, _as_array(x), state, steps)
    return dp.ranges


def compress_model(
    model: nn.Module,
    *,
    density: float | dict[str, float],
    num_pes: int,
    weight_bits: int = 12,
    balanced: bool = True,
    calibration: Calibration = None,
    activation_bits: int = 16,
    cell_guard_bits: int = 0,
    activation: ActivationConfig | None = None,
    modules: list[str] | None = None,
    fill_gaps: bool = True,
) -> CompressedModel:
    """Compress ``model`` into a :class:`CompressedModel` (module docstring).

    Args:
        density: fraction of weights kept, for every matrix or per matrix (``{"block:param"
            or "param": density}``).
        num_pes: processing elements the rows are interleaved over.
        weight_bits: weight width (per-matrix fractional width).
        balanced: load-balance-aware pruning (ESE §3) instead of plain magnitude pruning.
        calibration: inputs for ``model`` (a tensor or a tuple of arguments), or a callable
            that runs ``model`` on calibration data; None uses the default ranges.
        activation_bits: width of activations and states.
        cell_guard_bits: integer bits of the cell states above their calibrated range
            (:func:`~lstmforge.compress.quantization.activation_formats`; 0: none).
        activation: the sigmoid/tanh units (default: 1024-entry interpolated LUTs, Q5.11 in,
            Q1.15 out).
        modules: qualified names of the submodules to compress (default: discovered).
        fill_gaps: keep real weights where the CSC format would store padding entries
            (:func:`~lstmforge.compress.pruning.prune_mask`); the density counts them.
    """
    if not isinstance(num_pes, numbers.Integral) or isinstance(num_pes, bool) or num_pes < 1:
        raise InputError(f"num_pes: expected a positive integer, got {num_pes!r}")
    num_pes = int(num_pes)
    if not 2 <= weight_bits <= 16:
        raise InputError(f"weight_bits: expected 2..16, got {weight_bits}")
    activation = activation or ActivationConfig()
    targets = find_blocks(model, modules)
    captured = _capture_inputs(model, targets, calibration) if calibration is not None else {}

    blocks, load_report, ranges_report, keys = [], {}, {}, set()
    for name, module, kind in targets:
        config = block_config(module, kind)
        matrices, shapes, vectors = float_weights(module, kind)
        keys.update(key for mname in matrices for key in matrix_keys(name, mname))
        for pname, values in (matrices | vectors).items():
            if not np.all(np.isfinite(values)):
                raise InputError(f"{name or '<root>'}:{pname}: the weights hold NaN or inf")
        masks = {}
        for mname, w in matrices.items():
            d = density_for(density, name, mname)
            both = {mode: prune_mask(w, d, num_pes, mode, fill_gaps) for mode in (True, False)}
            masks[mname] = both[balanced]
            load_report[f"{name or '<root>'}:{mname}"] = {
                "density": d,
                "balanced": pe_load(both[True], num_pes),
                "unbalanced": pe_load(both[False], num_pes),
            }
        pruned = {m: np.where(masks[m], w, 0.0) for m, w in matrices.items()}
        ranges = None
        if captured.get(name):
            ranges = _calibrate_block(kind, config, pruned | vectors, captured[name])
            ranges_report[name or "<root>"] = ranges
        formats = activation_formats(kind, config, ranges, activation_bits, cell_guard_bits)
        sparse = {}
        for mname, w in matrices.items():
            fmt = weight_format(pruned[mname], weight_bits)
            codes = quantize_weights(w, masks[mname], fmt)
            sparse[mname] = SparseMatrix.from_codes(codes, fmt, num_pes, shapes[mname])
        fixed = {}
        for vname, v in vectors.items():
            if vname.startswith("bias"):
                fmt = formats["output"] if kind == "linear" else activation.input_format
            else:
                fmt = format_for_range(float(np.max(np.abs(v), initial=0.0)), weight_bits)
            fixed[vname] = FixedVector(quantize(v, fmt), fmt)
        blocks.append(Block(name, kind, config, sparse, fixed, formats))

    unknown = sorted(set(density) - keys) if isinstance(density, dict) else []
    if unknown:
        raise InputError(f"density: no matrix {', '.join(map(repr, unknown))} in the model")
    units = ActivationUnits(activation)
    cm = CompressedModel(
        blocks=blocks,
        num_pes=num_pes,
        activation=activation,
        activation_tables=units.tables,
        settings={
            "density": density,
            "weight_bits": weight_bits,
            "activation_bits": activation_bits,
            "cell_guard_bits": cell_guard_bits,
            "balanced": balanced,
            "fill_gaps": fill_gaps,
            "calibrated": calibration is not None,
            "source_model": type(model).__name__,
            "host_digest": host_digest(model, (block.name for block in blocks)),
        },
    )
    cm.report = {
        "pe_load": load_report,
        "calibration_ranges": ranges_report,
        "activation_unit_error": {f: unit_error(f, units) for f in FUNCTIONS},
        "footprint": footprint(cm),
    }
    return cm


def format_summary(cm: CompressedModel) -> dict[str, str]:
    """Every format of the artifact in Qm.n notation, for display."""
    out: dict[str, str] = {
        "activation input": str(cm.activation.input_format),
        "gate": str(cm.activation.output_format),
    }
    for block in cm.blocks:
        prefix = block.name or "<root>"
        out |= {f"{prefix}:{k}": str(f) for k, f in block.formats.items()}
        out |= {f"{prefix}:{k}": str(m.fmt) for k, m in block.matrices.items()}
    return out
