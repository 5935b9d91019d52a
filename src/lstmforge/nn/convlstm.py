"""Convolutional LSTM (ConvLSTM) with Hadamard peepholes.

Per layer, with ``*`` a 2-D 'same' convolution (zero padding unless ``row_padding`` says
otherwise, below), ``∘`` the Hadamard product
and gate order (i, f, g, o) (Shi et al. 2015, eq. 3):

    i_t = σ(W_xi * X_t + W_hi * H_{t-1} + W_ci ∘ C_{t-1} + b_i)
    f_t = σ(W_xf * X_t + W_hf * H_{t-1} + W_cf ∘ C_{t-1} + b_f)
    g_t = tanh(W_xg * X_t + W_hg * H_{t-1} + b_g)
    C_t = f_t ∘ C_{t-1} + i_t ∘ g_t
    o_t = σ(W_xo * X_t + W_ho * H_{t-1} + W_co ∘ C_t + b_o)          (peephole on the NEW cell)
    H_t = o_t ∘ tanh(C_t)

The input-to-state kernels W_x* are kx × kx and the state-to-state kernels W_h* are k × k
(``input_kernel_size`` and ``kernel_size``, both odd, per layer); kx = k unless given. Shi et
al.'s Table 1 names a model by them: "ConvLSTM(9×9)-1×1-128-1×1-128" has 9 × 9 input-to-state
and 1 × 1 state-to-state kernels (``kernel_size=1, input_kernel_size=9``), the "5×5" models
kx = k = 5. With 'same' padding every convolution keeps the frame size, so the two sums of a
gate add up pixel by pixel whatever kx and k are.

Padding (``row_padding=``): a kernel of size k pads k // 2 rows above and below the frame and
k // 2 columns left and right of it.
    ``"zeros"``     (default) zero rows and columns: the frame's edges are edges;
    ``"circular"``  the rows wrap around (row -1 is row H-1, row H is row 0) while the columns
                    keep zero padding: for frames whose row axis is a ring, e.g. the electrodes
                    of an armband around the forearm in LE-ConvMN's [C, W] images. Every
                    convolution K * X (each W_x* and W_h* of every layer, K a k × k kernel,
                    p = k // 2, X a frame [Cin, H, W]) is then
                    (K * X)[r, s] = Σ_{c,u,v} K[c, u, v] · X[c, (r + u − p) mod H, s + v − p]
                    with X[·, ·, s'] = 0 for s' < 0 or s' >= W (one output channel shown);
                    it needs p <= H. Rolling the rows of the input (and of the initial state)
                    by r then rolls every hidden and cell state by r (per-position peepholes
                    rolled with them), which zero padding breaks at the frame's edges.

Peepholes come in three kinds (``peephole=``):
    ``True`` or ``"pixel"``  per-position weights [Hc, H, W] as in the paper; they tie the model
                             to its frame size, so ``frame_size=(H, W)`` is required;
    ``"channel"``            one weight per hidden channel [Hc, 1, 1], broadcast over the frame:
                             a resizable model that runs on any frame size;
    ``False``                no peepholes (the common variant).

References:
    X. Shi, Z. Chen, H. Wang, D.-Y. Yeung, W.-K. Wong, W.-C. Woo, "Convolutional LSTM network:
    a machine learning approach for precipitation nowcasting", NeurIPS 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lstmforge.errors import InputError
from lstmforge.nn._validate import check_tensor, is_tracing

ConvLSTMState = list[tuple[Tensor, Tensor]]
PEEPHOLE_KINDS = {True: "pixel", "pixel": "pixel", "channel": "channel", False: None}  # -> kind
ROW_PADDINGS = ("zeros", "circular")


def same_conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, row_padding: str = "zeros"
) -> Tensor:
    """'Same' 2-D convolution of x [N, C, H, W] with an odd square kernel [O, C, k, k].

    ``row_padding="zeros"``: zero padding k // 2 on every side (``F.conv2d(padding=k // 2)``);
    ``"circular"``: the last / first k // 2 rows are copied above / below the frame (the row
    axis wraps around, needs k // 2 <= H), the columns are zero padded.
    """
    pad = weight.shape[-1] // 2
    if row_padding == "zeros":
        return F.conv2d(x, weight, bias, padding=pad)
    rows = x.shape[-2]  # rows - pad, not -pad: right for pad = 0 too, without a branch
    x = torch.cat([x[..., rows - pad :, :], x, x[..., :pad, :]], dim=-2)
    return F.conv2d(x, weight, bias, padding=(0, pad))


def conv_lstm_layer(
    x_gates: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    weight_h: Tensor,
    bias: Tensor | None,
    peepholes: tuple[Tensor, Tensor, Tensor] | None,
    steps: int,
    row_padding: str = "zeros",
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one ConvLSTM layer for ``steps`` steps (module docstring equations).

    Args:
        x_gates: the input convolution of all steps, bias included, [B, T, 4Hc, H, W]; or None
            for a layer without input (then ``bias`` [4Hc] is added to the hidden convolution).
        h0, c0: initial state [B, Hc, H, W]; weight_h: [4Hc, Hc, k, k];
        peepholes: ``(w_ci, w_cf, w_co)`` each [Hc, H, W] or [Hc, 1, 1], or None.
        row_padding: ``"zeros"`` or ``"circular"`` rows for the hidden convolution
            (:func:`same_conv2d`).

    Returns:
        ``(y [B, T, Hc, H, W], H_T, C_T)``.
    """
    hidden = c0.shape[1]
    step_bias = bias if x_gates is None else None
    # unbind (not x_gates[:, t]): backward stacks the step gradients once.
    x_steps = x_gates.unbind(1) if x_gates is not None else [None] * steps
    if peepholes is not None:
        w_cif, w_co = torch.stack([peepholes[0], peepholes[1]]), peepholes[2]  # i, f
    h, c = h0, c0
    outputs = []
    for x_t in x_steps:
        gates = same_conv2d(h, weight_h, step_bias, row_padding)
        if x_t is not None:
            gates = gates + x_t
        if_pre, g_pre, o_pre = gates.split([2 * hidden, hidden, hidden], dim=1)
        if_pre = if_pre.unflatten(1, (2, hidden))  # [B, 2, Hc, H, W]
        if peepholes is not None:
            if_pre = torch.addcmul(if_pre, w_cif, c.unsqueeze(1))
        i, f = torch.sigmoid(if_pre).unbind(1)
        c = torch.addcmul(f * c, i, torch.tanh(g_pre))
        if peepholes is not None:
            o_pre = torch.addcmul(o_pre, w_co, c)
        h = torch.sigmoid(o_pre) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c


def _per_layer(name: str, value: int | Sequence[int], num_layers: int) -> list[int]:
    """Expand an int to ``num_layers`` copies; check a list has one positive int per layer."""
    if isinstance(value, int):
        values = [value] * num_layers
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = list(value)
    else:
        raise InputError(
            f"ConvLSTM {name}: expected an int or a list of {num_layers} ints (num_layers), "
            f"got {value!r}"
        )
    if len(values) != num_layers:
        raise InputError(
            f"ConvLSTM {name}: expected an int or a list of {num_layers} ints (num_layers), "
            f"got {value!r}"
        )
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"ConvLSTM {name}: expected positive integers, got {value!r}")
    return values


def _kernel_sizes(name: str, value: int | Sequence[int], num_layers: int) -> list[int]:
    """:func:`_per_layer` for kernel sizes, which must also be odd ('same' zero padding)."""
    values = _per_layer(name, value, num_layers)
    if any(k % 2 == 0 for k in values):
        raise InputError(
            f"ConvLSTM {name}: expected odd sizes ('same' padding keeps the frame size only "
            f"for odd kernels), got {value!r}"
        )
    return values


class ConvLSTM(nn.Module):
    """Multi-layer ConvLSTM; layer k > 0 reads layer k-1's hidden sequence.

    Args:
        in_channels: input channels (Cin). ``0`` makes a layer 0 without input, as in the
            forecasting network of Shi et al.: it runs from its state alone, see ``forward``.
        hidden_channels: Hc, an int or one int per layer.
        kernel_size: odd kernel size k (square, 'same' zero padding) of the state-to-state
            convolutions W_h*, and of the input-to-state ones unless ``input_kernel_size`` is
            given; an int or one per layer.
        num_layers: number of stacked layers.
        frame_size: ``(H, W)`` or an int; required with per-position peepholes.
        peephole: ``True``/``"pixel"``, ``"channel"`` or ``False`` (module docstring).
        bias: add ``bias_l{k}`` [4Hc].
        batch_first: inputs/outputs are [B, T, C, H, W] (default) instead of [T, B, C, H, W].
        input_kernel_size: odd kernel size kx of the input-to-state convolutions W_x* (layer 0
            reads the input frames, layer k > 0 layer k-1's hidden states); an int or one per
            layer; default ``kernel_size``. Keyword only.
        row_padding: ``"zeros"`` (default) or ``"circular"``: how every convolution of every
            layer (input-to-state and state-to-state) pads the row axis (H); the column axis
            is always zero padded (module docstring). ``"circular"`` is for frames whose rows
            form a ring and needs kernel // 2 <= H for every kernel. Keyword only.

    Parameters per layer k: ``weight_x_l{k}`` [4Hc, Cin, kx, kx] (absent when layer 0 has no
    input), ``weight_h_l{k}`` [4Hc, Hc, k, k], ``bias_l{k}`` [4Hc], peepholes ``weight_ci_l{k}``,
    ``weight_cf_l{k}``, ``weight_co_l{k}`` [Hc, H, W] (``"channel"``: [Hc, 1, 1]).

    ``forward(x, state=None, steps=None) -> (y, [(h, c) per layer])``:
        x: [B, T, Cin, H, W]; state: one ``(h, c)`` pair [B, Hc_k, H, W] per layer, zeros when
        None; y: the last layer's hidden sequence [B, T, Hc_last, H, W] (the last output alone
        is ``states[-1][0]``). Feeding a sequence in chunks with the carried states gives the
        same result as one call.
        Without input (``in_channels=0``): call ``forward(None, state, steps=T)``; the state is
        then required (it fixes B, H and W) and the model runs T steps from it.

    Bad input (wrong rank, channel count, frame size other than ``frame_size`` with
    per-position peepholes, state shapes, NaN/inf in x or the state) raises
    :class:`lstmforge.errors.InputError`, a ``ValueError`` naming the expected shape. The checks
    are skipped while tracing/exporting.

    Export: ``torch.export.export`` and ``torch.onnx.export`` work on the module as is;
    ``torch.jit.trace`` cannot return the list of state pairs, so trace a wrapper returning ``y``.

    Example (the encoder-forecaster of Shi et al.: the forecaster has no input and starts from
    the encoder's states)::

        encoder = ConvLSTM(1, [64, 64], 3, num_layers=2, frame_size=(100, 100))
        forecaster = ConvLSTM(0, [64, 64], 3, num_layers=2, frame_size=(100, 100))
        _, states = encoder(past)                        # past [B, 5, 1, 100, 100]
        future, _ = forecaster(None, states, steps=10)   # [B, 10, 64, 100, 100]
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int | Sequence[int],
        kernel_size: int | Sequence[int],
        num_layers: int = 1,
        frame_size: int | tuple[int, int] | None = None,
        peephole: bool | str = True,
        bias: bool = True,
        batch_first: bool = True,
        *,
        input_kernel_size: int | Sequence[int] | None = None,
        row_padding: str = "zeros",
    ) -> None:
        super().__init__()
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise InputError(f"ConvLSTM num_layers: expected an integer >= 1, got {num_layers!r}")
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 0:
            raise InputError(f"ConvLSTM in_channels: expected an integer >= 0, got {in_channels!r}")
        if not (isinstance(peephole, bool) or peephole in ("pixel", "channel")):
            raise InputError(
                f"ConvLSTM peephole: expected True, 'pixel', 'channel' or False, got {peephole!r}"
            )
        self.hidden_channels = _per_layer("hidden_channels", hidden_channels, num_layers)
        self.kernel_size = _kernel_sizes("kernel_size", kernel_size, num_layers)
        self.input_kernel_size = (
            list(self.kernel_size)
            if input_kernel_size is None
            else _kernel_sizes("input_kernel_size", input_kernel_size, num_layers)
        )
        self.frame_size = self._check_frame_size(frame_size)
        if not isinstance(row_padding, str) or row_padding not in ROW_PADDINGS:
            raise InputError(
                f"ConvLSTM row_padding: expected 'zeros' or 'circular', got {row_padding!r}"
            )
        self.row_padding = row_padding
        if self.frame_size is not None:
            self._check_ring(self.frame_size)
        self.peephole = PEEPHOLE_KINDS[peephole]
        if self.peephole == "pixel" and self.frame_size is None:
            raise InputError(
                "ConvLSTM frame_size: required as (H, W) with per-position peepholes "
                "(peephole=True); use peephole='channel' for a model that runs on any frame size"
            )
        self.in_channels = in_channels
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        for layer, (hidden, k, kx) in enumerate(
            zip(self.hidden_channels, self.kernel_size, self.input_kernel_size, strict=True)
        ):
            layer_in = in_channels if layer == 0 else self.hidden_channels[layer - 1]
            if layer_in > 0:
                self.register_parameter(
                    f"weight_x_l{layer}", nn.Parameter(torch.empty(4 * hidden, layer_in, kx, kx))
                )
            self.register_parameter(
                f"weight_h_l{layer}", nn.Parameter(torch.empty(4 * hidden, hidden, k, k))
            )
            if bias:
                self.register_parameter(f"bias_l{layer}", nn.Parameter(torch.empty(4 * hidden)))
            if self.peephole is not None:
                shape = (hidden, *self.frame_size) if self.peephole == "pixel" else (hidden, 1, 1)
                for gate in ("ci", "cf", "co"):
                    self.register_parameter(
                        f"weight_{gate}_l{layer}", nn.Parameter(torch.empty(shape))
                    )
        self.reset_parameters()

    @staticmethod
    def _check_frame_size(frame_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
        if frame_size is None:
            return None
        size = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise InputError(
                f"ConvLSTM frame_size: expected (H, W) positive ints, got {frame_size!r}"
            )
        return size

    def _check_ring(self, frame: tuple[int, int]) -> None:
        """Circular row padding wraps k // 2 rows: every kernel needs k // 2 <= H."""
        if self.row_padding != "circular":
            return
        widest = max(self.kernel_size + self.input_kernel_size)
        if widest // 2 > frame[0]:
            raise InputError(
                f"ConvLSTM row_padding='circular': kernel size {widest} wraps {widest // 2} rows, "
                f"more than the frame's {frame[0]} rows (needs kernel // 2 <= frame height)"
            )

    def reset_parameters(self) -> None:
        """Uniform(±1/sqrt(fan_in)) per layer, fan_in = Cin·kx² + Hc·k² of the gate convolution
        (``(Cin + Hc)·k²`` when kx = k)."""
        for layer, (hidden, k, kx) in enumerate(
            zip(self.hidden_channels, self.kernel_size, self.input_kernel_size, strict=True)
        ):
            layer_in = self.in_channels if layer == 0 else self.hidden_channels[layer - 1]
            bound = 1.0 / math.sqrt(layer_in * kx * kx + hidden * k * k)
            for name, weight in self.named_parameters():
                if name.endswith(f"_l{layer}"):
                    nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, "
            f"num_layers={self.num_layers}, frame_size={self.frame_size}, "
            f"peephole={self.peephole}, bias={self.bias}, batch_first={self.batch_first}"
        )
        if self.input_kernel_size != self.kernel_size:
            text += f", input_kernel_size={self.input_kernel_size}"
        if self.row_padding != "zeros":
            text += f", row_padding={self.row_padding!r}"
        return text

    def forward(
        self,
        x: Tensor | None,
        state: ConvLSTMState | None = None,
        steps: int | None = None,
    ) -> tuple[Tensor, ConvLSTMState]:
        """Run the stack; see the class docstring for shapes, the no-input mode and errors."""
        if x is None:
            batch, steps, frame = self._sizes_without_input(state, steps)
            seq = None
        else:
            batch, steps, frame = self._sizes_with_input(x, steps)
            seq = x if self.batch_first else x.transpose(0, 1)
        states = self._initial_state(state, batch, frame)
        if not is_tracing():
            self._check_ring(frame)
        finals = []
        for layer in range(self.num_layers):
            key = f"_l{layer}"
            bias = getattr(self, "bias" + key) if self.bias else None
            x_gates = None
            if seq is not None:  # one batched convolution over all time steps
                weight_x = getattr(self, "weight_x" + key)
                flat = seq.reshape(batch * steps, *seq.shape[2:])
                x_gates = same_conv2d(flat, weight_x, bias, self.row_padding)
                x_gates = x_gates.reshape(batch, steps, *x_gates.shape[1:])
            peepholes = None
            if self.peephole is not None:
                peepholes = tuple(getattr(self, f"weight_{g}{key}") for g in ("ci", "cf", "co"))
            h0, c0 = states[layer]
            seq, h_n, c_n = conv_lstm_layer(
                x_gates,
                h0,
                c0,
                getattr(self, "weight_h" + key),
                bias,
                peepholes,
                steps,
                self.row_padding,
            )
            finals.append((h_n, c_n))
        y = seq if self.batch_first else seq.transpose(0, 1)
        return y, finals

    @property
    def _dtype(self) -> torch.dtype:
        return self.weight_h_l0.dtype

    def _sizes_with_input(self, x: Tensor, steps: int | None) -> tuple[int, int, tuple[int, int]]:
        """Check x; return (batch, steps, frame)."""
        if self.in_channels == 0:
            raise InputError(
                "ConvLSTM x: this model has no input (in_channels=0); "
                "call forward(None, state, steps=T)"
            )
        if steps is not None:
            raise InputError("ConvLSTM steps: only used without input (x=None)")
        frame = self.frame_size if self.peephole == "pixel" else ("H", "W")
        dims = ["B", "T", self.in_channels, *frame]
        if not self.batch_first:
            dims[0], dims[1] = "T", "B"
        check_tensor("ConvLSTM input x", x, dims, self._dtype)
        batch, steps = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        return batch, steps, tuple(x.shape[3:])

    def _sizes_without_input(
        self, state: ConvLSTMState | None, steps: int | None
    ) -> tuple[int, int, tuple[int, int]]:
        """Check the no-input call; return (batch, steps, frame) taken from the state."""
        if self.in_channels > 0:
            raise InputError(
                f"ConvLSTM x: expected a tensor [B, T, {self.in_channels}, H, W]; "
                "x=None is only for a model without input (in_channels=0)"
            )
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise InputError(f"ConvLSTM steps: expected a positive int with x=None, got {steps!r}")
        h = None
        if isinstance(state, (list, tuple)) and state and isinstance(state[0], (list, tuple)):
            h = state[0][0] if state[0] else None
        if not isinstance(h, Tensor) or h.dim() != 4:
            raise InputError(
                "ConvLSTM state: required with x=None, as a list of (h, c) pairs with h of shape "
                f"[B, {self.hidden_channels[0]}, H, W] (it fixes batch and frame size)"
            )
        return h.shape[0], steps, tuple(h.shape[2:])

    def _initial_state(
        self, state: ConvLSTMState | None, batch: int, frame: tuple[int, int]
    ) -> ConvLSTMState:
        """Check the given state, or make the zero state, for this batch and frame size."""
        if self.peephole == "pixel" and not is_tracing() and frame != self.frame_size:
            raise InputError(
                f"ConvLSTM frame: expected frame size {self.frame_size} (per-position "
                f"peepholes), got {frame}"
            )
        if state is None:
            weight = self.weight_h_l0
            return [
                (weight.new_zeros(batch, hidden, *frame), weight.new_zeros(batch, hidden, *frame))
                for hidden in self.hidden_channels
            ]
        if not isinstance(state, (list, tuple)) or len(state) != self.num_layers:
            raise InputError(f"ConvLSTM state: expected a list of {self.num_layers} (h, c) pairs")
        checked = []
        for layer, (pair, hidden) in enumerate(zip(state, self.hidden_channels, strict=True)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InputError(f"ConvLSTM state[{layer}]: expected an (h, c) pair")
            expected = [batch, hidden, *frame]
            h = check_tensor(f"ConvLSTM state[{layer}] h", pair[0], expected, self._dtype)
            c = check_tensor(f"ConvLSTM state[{layer}] c", pair[1], expected, self._dtype)
            checked.append((h, c))
        return checked
