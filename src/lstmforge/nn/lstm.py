"""Peephole LSTM and LSTM with a recurrent projection (LSTMP).

Per layer and direction, with gate order (i, f, g, o) as in ``torch.nn.LSTM``:

    i_t = σ(W_ii x_t + b_ii + W_hi r_{t-1} + b_hi + w_ci ∘ c_{t-1})
    f_t = σ(W_if x_t + b_if + W_hf r_{t-1} + b_hf + w_cf ∘ c_{t-1})
    g_t = tanh(W_ig x_t + b_ig + W_hg r_{t-1} + b_hg)
    c_t = f_t ∘ c_{t-1} + i_t ∘ g_t
    o_t = σ(W_io x_t + b_io + W_ho r_{t-1} + b_ho + w_co ∘ c_t)      (peephole on the NEW cell)
    h_t = o_t ∘ tanh(c_t)
    r_t = W_hr h_t  with ``proj_size > 0`` (LSTMP), else r_t = h_t

References:
    F. A. Gers, N. N. Schraudolph, J. Schmidhuber, "Learning precise timing with LSTM recurrent
    networks", JMLR 3, 2002 (peephole connections).
    H. Sak, A. Senior, F. Beaufays, "Long short-term memory recurrent neural network
    architectures for large scale acoustic modeling", Interspeech 2014 (LSTMP, eq. 1-7).
    S. Han et al., "ESE: Efficient speech recognition engine with sparse LSTM on FPGA",
    FPGA 2017 (the peephole LSTMP this toolkit accelerates).

Parameters are named and shaped exactly like ``torch.nn.LSTM`` (``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}``, with the suffix
``_reverse`` for the backward direction) plus the peepholes ``weight_ci_l{k}``,
``weight_cf_l{k}``, ``weight_co_l{k}`` of shape [H]. A ``torch.nn.LSTM`` state dict therefore
loads with ``strict=False``; with the peepholes at zero the outputs are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmforge.errors import InputError
from lstmforge.nn._validate import check_tensor, is_tracing
from lstmforge.nn.lstm_recurrence import peephole_recurrence

LSTMState = tuple[Tensor, Tensor]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a time-major batch [T, B, ...] within its own length.

    Steps past a sequence's length stay where they are, so the reverse direction starts at each
    sequence's last valid step. Applying it twice gives back ``x``.
    """
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)  # [T, 1]
    lengths = lengths.to(x.device).unsqueeze(0)  # [1, B]
    source = torch.where(t < lengths, lengths - 1 - t, t)  # [T, B]
    index = source.reshape(steps, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def peephole_lstm_direction(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    peepholes: tuple[Tensor, Tensor, Tensor],
    weight_hr: Tensor | None,
    mask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one layer in one direction over a time-major sequence (module docstring equations).

    Args:
        x: input [T, B, I]; h0: recurrent output [B, P or H]; c0: cell state [B, H].
        bias: ``b_ih + b_hh`` [4H] or None; peepholes: ``(w_ci, w_cf, w_co)`` each [H];
        weight_hr: projection [P, H] or None; mask: [T, B, 1] bool, False on padded steps
        (their output is zero and the state is carried through unchanged), or None.

    Returns:
        ``(y [T, B, P or H], r_T, c_T)``. The input projection of all time steps is one matmul
        before the loop; the loop and its backward pass are
        :func:`lstmforge.nn.lstm_recurrence.peephole_recurrence`.
    """
    input_projection = F.linear(x, weight_ih, bias)  # [T, B, 4H]
    return peephole_recurrence(input_projection, h0, c0, weight_hh, peepholes, weight_hr, mask)


class LSTM(nn.Module):
    """Multi-layer peephole LSTM / LSTMP with the interface of ``torch.nn.LSTM``.

    Args:
        input_size: features per input step (I).
        hidden_size: cells per layer and direction (H).
        num_layers: stacked layers; layer k > 0 reads layer k-1's output.
        proj_size: P > 0 adds the LSTMP projection r_t = W_hr h_t (P < H), as in torch.
        peephole: add the peephole weights w_ci, w_cf, w_co; the recurrence then runs
            :func:`lstmforge.nn.lstm_recurrence.peephole_recurrence` (a step loop with a
            hand-written BPTT backward). With ``peephole=False`` the forward pass runs torch's
            fused LSTM kernel (``torch._VF.lstm``: the CPU kernel of ``torch.nn.LSTM``, cuDNN on
            GPU) on the same parameters.
        bias: add ``bias_ih``/``bias_hh``.
        batch_first: inputs and outputs are [B, T, F] (default) instead of [T, B, F].
        dropout: dropout probability on the outputs of every layer except the last (training).
        bidirectional: add a backward direction; outputs are concatenated [forward, backward].

    ``forward(x, state=None, lengths=None) -> (y, (h_n, c_n))``:
        x: [B, T, I] (or a ``PackedSequence``, which gives a ``PackedSequence`` back);
        state: ``(h_0 [L*D, B, P or H], c_0 [L*D, B, H])``, zeros when None;
        lengths: [B] valid steps per sequence (1..T) for a padded batch. Padded steps output
        zeros; ``(h_n, c_n)`` is each sequence's state at its last valid step; the backward
        direction starts at each sequence's last valid step.
        y: [B, T, D*(P or H)]; h_n: [L*D, B, P or H]; c_n: [L*D, B, H], indexed
        ``layer * D + direction`` like torch. Feeding a sequence in chunks with the carried
        state gives the same result as one call (unidirectional).

    Bad input (wrong rank, feature size, a dtype other than the parameters', an empty input,
    state shape, lengths, or NaN/inf values in x or the state) raises :class:`lstmforge.errors.InputError`, a ``ValueError`` naming the expected
    shape. The checks are skipped while tracing/exporting (``torch.jit.trace``,
    ``torch.export``, ``torch.onnx.export`` all work on the module as is).

    Example (ESE's "Google LSTMP": 153 inputs, 1024 cells, 512 projection, peepholes)::

        lstm = LSTM(153, 1024, proj_size=512)
        y, state = lstm(frames)               # frames [B, T, 153] -> y [B, T, 512]
        y_next, state = lstm(next_frames, state)  # streaming: carry the state
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        proj_size: int = 0,
        peephole: bool = True,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        for name, value, minimum in (
            ("input_size", input_size, 1),
            ("hidden_size", hidden_size, 1),
            ("num_layers", num_layers, 1),
            ("proj_size", proj_size, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise InputError(f"LSTM {name}: expected an integer >= {minimum}, got {value!r}")
        if proj_size >= hidden_size:
            raise InputError(
                f"LSTM proj_size: expected 0 or < hidden_size={hidden_size}, got {proj_size}"
            )
        if not 0.0 <= float(dropout) <= 1.0:
            raise InputError(f"LSTM dropout: expected a probability in [0, 1], got {dropout}")
        if not isinstance(peephole, bool):
            raise InputError(f"LSTM peephole: expected True or False, got {peephole!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.proj_size = proj_size
        self.peephole = peephole
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        gate_size = 4 * hidden_size
        # Registration order = torch's flat-weight order (w_ih, w_hh, b_ih, b_hh, w_hr), which
        # is what torch._VF.lstm expects; peepholes follow.
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * self.num_directions
            for suffix in self._suffixes():
                key = f"_l{layer}{suffix}"
                self.register_parameter(
                    "weight_ih" + key, nn.Parameter(torch.empty(gate_size, layer_in))
                )
                self.register_parameter(
                    "weight_hh" + key, nn.Parameter(torch.empty(gate_size, out_size))
                )
                if bias:
                    self.register_parameter("bias_ih" + key, nn.Parameter(torch.empty(gate_size)))
                    self.register_parameter("bias_hh" + key, nn.Parameter(torch.empty(gate_size)))
                if proj_size:
                    self.register_parameter(
                        "weight_hr" + key, nn.Parameter(torch.empty(proj_size, hidden_size))
                    )
                if peephole:
                    for gate in ("ci", "cf", "co"):
                        self.register_parameter(
                            f"weight_{gate}" + key, nn.Parameter(torch.empty(hidden_size))
                        )
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _flat_weight_names(self) -> list[str]:
        """Parameter names in torch's flat-weight order (w_ih, w_hh, b_ih, b_hh, w_hr per layer
        and direction), the order ``torch._VF.lstm`` expects."""
        kinds = ["weight_ih", "weight_hh"]
        kinds += ["bias_ih", "bias_hh"] if self.bias else []
        kinds += ["weight_hr"] if self.proj_size else []
        return [
            f"{kind}_l{layer}{suffix}"
            for layer in range(self.num_layers)
            for suffix in self._suffixes()
            for kind in kinds
        ]

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, peepholes included (as torch)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @classmethod
    def from_torch(cls, lstm: nn.LSTM, peephole: bool = True) -> LSTM:
        """An LSTM with the weights and layout of ``lstm``, peepholes at zero (same outputs)."""
        module = cls(
            lstm.input_size,
            lstm.hidden_size,
            num_layers=lstm.num_layers,
            proj_size=lstm.proj_size,
            peephole=peephole,
            bias=lstm.bias,
            batch_first=lstm.batch_first,
            dropout=lstm.dropout,
            bidirectional=lstm.bidirectional,
        ).to(device=lstm.weight_ih_l0.device, dtype=lstm.weight_ih_l0.dtype)
        module.load_state_dict(lstm.state_dict(), strict=False)
        with torch.no_grad():
            for name, weight in module.named_parameters():
                if name.startswith(("weight_ci", "weight_cf", "weight_co")):
                    weight.zero_()
        return module

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        text += f", peephole={self.peephole}, bias={self.bias}, batch_first={self.batch_first}"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

    # ----------------------------------------------------------------------------------------
    # forward
    # ----------------------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor | PackedSequence,
        state: LSTMState | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, LSTMState]:
        """Run the stack over ``x``; see the class docstring for shapes and semantics."""
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise InputError("LSTM lengths: must be None when x is a PackedSequence")
            padded, packed_lengths = pad_packed_sequence(x, batch_first=self.batch_first)
            y, final = self.forward(padded, state, packed_lengths)
            return self._repack(y, packed_lengths, x), final

        dims = ["B", "T", self.input_size] if self.batch_first else ["T", "B", self.input_size]
        check_tensor("LSTM input x", x, dims, self.weight_ih_l0.dtype)
        x_tm = x.transpose(0, 1) if self.batch_first else x
        steps, batch = x_tm.shape[0], x_tm.shape[1]
        if lengths is not None:
            lengths = self._check_lengths(lengths, batch, steps)
        h0, c0 = self._initial_state(state, x_tm)
        if self.peephole:
            y_tm, h_n, c_n = self._forward_peephole(x_tm, h0, c0, lengths)
        else:
            y_tm, h_n, c_n = self._forward_fused(x_tm, h0, c0, lengths)
        y = y_tm.transpose(0, 1) if self.batch_first else y_tm
        return y, (h_n, c_n)

    def _repack(self, y: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
        """Pack the padded output ``y`` with the batch order and sizes of the input ``like``."""
        y_time_major = y.transpose(0, 1) if self.batch_first else y
        order = like.sorted_indices
        if order is None:  # packed with enforce_sorted=True: already in decreasing length
            order = torch.arange(y_time_major.shape[1], device=lengths.device)
        data = pack_padded_sequence(y_time_major[:, order.to(y.device)], lengths[order.cpu()]).data
        return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)

    def _check_lengths(self, lengths: Tensor | Sequence[int], batch: int, steps: int) -> Tensor:
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (batch,) or lengths.is_floating_point() or lengths.is_complex():
            raise InputError(
                f"LSTM lengths: expected an integer tensor of shape [{batch}], "
                f"got {lengths.dtype} of shape {list(lengths.shape)}"
            )
        if not is_tracing() and bool(((lengths < 1) | (lengths > steps)).any()):
            raise InputError(f"LSTM lengths: expected values in 1..{steps}, got {lengths.tolist()}")
        return lengths.to(dtype=torch.int64)

    def _initial_state(self, state: LSTMState | None, x_tm: Tensor) -> LSTMState:
        layers = self.num_layers * self.num_directions
        batch = x_tm.shape[1]
        out_size = self.proj_size or self.hidden_size
        if state is None:
            h0 = x_tm.new_zeros(layers, batch, out_size)
            c0 = x_tm.new_zeros(layers, batch, self.hidden_size)
            return h0, c0
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise InputError("LSTM state: expected a tuple (h_0, c_0)")
        h0 = check_tensor(
            "LSTM state h_0", state[0], [layers, batch, out_size], self.weight_ih_l0.dtype
        )
        c0 = check_tensor(
            "LSTM state c_0", state[1], [layers, batch, self.hidden_size], self.weight_ih_l0.dtype
        )
        return h0, c0

    def _forward_fused(
        self, x_tm: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``peephole=False``: torch's own fused kernel on the same parameters."""
        # by name, so parametrized weights (e.g. pruning masks) are used, in torch's order
        weights = [getattr(self, name) for name in self._flat_weight_names()]
        if lengths is None:
            y, h_n, c_n = torch._VF.lstm(
                x_tm, (h0, c0), weights, self.bias, self.num_layers, self.dropout,
                self.training, self.bidirectional, False,
            )  # fmt: skip
            return y, h_n, c_n
        packed = pack_padded_sequence(x_tm, lengths.cpu(), enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        data, h_n, c_n = torch._VF.lstm(
            packed.data, packed.batch_sizes, (h0[:, order], c0[:, order]), weights, self.bias,
            self.num_layers, self.dropout, self.training, self.bidirectional,
        )  # fmt: skip
        out = PackedSequence(data, packed.batch_sizes, order, unorder)
        y, _ = pad_packed_sequence(out, total_length=x_tm.shape[0])
        return y, h_n[:, unorder], c_n[:, unorder]

    def _forward_peephole(
        self, x_tm: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Layer by layer, direction by direction, with :func:`peephole_lstm_direction`."""
        mask = None
        if lengths is not None:
            t = torch.arange(x_tm.shape[0], device=x_tm.device).unsqueeze(1)
            mask = (t < lengths.to(x_tm.device).unsqueeze(0)).unsqueeze(2)  # [T, B, 1]
        layer_in = x_tm
        h_final, c_final = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0.0:
                layer_in = F.dropout(layer_in, self.dropout, self.training)
            outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + direction
                reverse = direction == 1
                seq = reverse_padded(layer_in, lengths) if reverse else layer_in
                y, h_n, c_n = peephole_lstm_direction(
                    seq, h0[index], c0[index], *self._direction_weights(layer, suffix), mask
                )
                outputs.append(reverse_padded(y, lengths) if reverse else y)
                h_final.append(h_n)
                c_final.append(c_n)
            layer_in = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return layer_in, torch.stack(h_final), torch.stack(c_final)

    def _direction_weights(self, layer: int, suffix: str) -> tuple:
        key = f"_l{layer}{suffix}"
        bias = None
        if self.bias:
            bias = getattr(self, "bias_ih" + key) + getattr(self, "bias_hh" + key)
        peepholes = tuple(getattr(self, f"weight_{g}{key}") for g in ("ci", "cf", "co"))
        weight_hr = getattr(self, "weight_hr" + key) if self.proj_size else None
        return (
            getattr(self, "weight_ih" + key),
            getattr(self, "weight_hh" + key),
            bias,
            peepholes,
            weight_hr,
        )
