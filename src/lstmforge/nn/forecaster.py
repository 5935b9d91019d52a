"""The encoding-forecasting network of Shi et al. (NIPS 2015, Sec. 3.3, Fig. 3) and the
FC-LSTM baseline it is compared with.

:class:`EncoderForecaster`: a stacked ConvLSTM *encoder* reads the input frames; its final
states are copied into a stacked ConvLSTM *forecaster* of the same shape that runs without
input (layer 0 from its state alone, layer k > 0 reading layer k-1's hidden states); the
hidden states of all forecaster layers are concatenated and mapped by a 1 x 1 convolution to
the prediction (logits; apply a sigmoid for intensities in [0, 1]).

:class:`FCForecaster`: the same encoder-forecaster structure with fully connected peephole
LSTMs on flattened frames (the "FC-LSTM-2048-2048" of Shi et al., Table 1, after Srivastava et
al., ICML 2015). A fully connected LSTM cannot run from its state alone with torch's
interface, so the forecaster is conditioned on its own previous prediction (the last input
frame at the first step), Srivastava et al.'s conditional future predictor; the prediction
fed back is the sigmoid of the output for a logit output (cross-entropy training) and the
output clamped to [0, 1] for a linear one (MSE / balanced MSE).

Both take ``x [B, T_in, C, H, W]`` and ``steps`` (the number of frames to predict; it may
differ from training) and return logits ``[B, steps, C_out, H, W]``. The recurrent cores are
:class:`lstmforge.nn.ConvLSTM` / :class:`lstmforge.nn.LSTM` submodules called only through
their ``forward``, so compressed engine-backed replacements slot in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lstmforge.errors import InputError
from lstmforge.nn.convlstm import ConvLSTM
from lstmforge.nn.lstm import LSTM


def _per_layer(
    what: str, value: int | Sequence[int], hidden: list[int], hidden_channels: Sequence[int]
) -> list:
    """One ``what`` size per layer from an int or a list (the ConvLSTMs check the values)."""
    sizes = [value] * len(hidden) if isinstance(value, int) else list(value)
    if not hidden or len(sizes) != len(hidden):
        raise InputError(
            f"EncoderForecaster: need one {what} size per layer, got hidden {hidden_channels!r} "
            f"and {what}s {value!r}"
        )
    return sizes


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InputError(f"forecast steps: expected a positive int, got {steps!r}")


class EncoderForecaster(nn.Module):
    """ConvLSTM encoder -> copied states -> input-free ConvLSTM forecaster -> 1x1 conv.

    Args:
        in_channels: channels of an input frame (after patch reshaping).
        hidden_channels: one int per layer (the same for encoder and forecaster).
        kernel_size: odd state-to-state kernel size (W_h*), an int or one per layer; also the
            input-to-state size unless ``input_kernel_size`` is given.
        frame_size: ``(H, W)`` of the (patch-reshaped) frames; required with pixel peepholes.
        peephole: as :class:`~lstmforge.nn.ConvLSTM` (``True``/``"pixel"``, ``"channel"``,
            ``False``).
        out_channels: channels of a predicted frame (default ``in_channels``).
        input_kernel_size: odd input-to-state kernel size (W_x*), an int or one per layer
            (default ``kernel_size``). Layer k's size is used by encoder layer k (layer 0 reads
            the frames, layer k > 0 the hidden states of layer k-1) and by forecaster layer
            k > 0 (it reads forecaster layer k-1's hidden states); forecaster layer 0 has no
            input and so no input-to-state convolution.

    Shi et al.'s "ConvLSTM(9×9)-1×1-128-1×1-64-1×1-64" is ``hidden_channels=[128, 64, 64],
    kernel_size=1, input_kernel_size=9``: 9×9 for every input-to-state convolution, 1×1 for
    every state-to-state one. That reading gives exactly the parameter counts of their Table 1
    (11,550,224 and 8,830,480 for the two (9×9)-1×1 models, with per-channel peepholes; see
    ``docs/nowcasting.md``); 9×9 on the first layer's input alone would give 1.06 M and
    0.97 M parameters.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: Sequence[int],
        kernel_size: int | Sequence[int],
        frame_size: tuple[int, int] | None = None,
        peephole: bool | str = True,
        out_channels: int | None = None,
        input_kernel_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        hidden = list(hidden_channels)
        kernels = _per_layer("kernel", kernel_size, hidden, hidden_channels)
        input_kernels = (
            kernels
            if input_kernel_size is None
            else _per_layer("input kernel", input_kernel_size, hidden, hidden_channels)
        )
        self.encoder = ConvLSTM(
            in_channels,
            hidden,
            kernels,
            len(hidden),
            frame_size=frame_size,
            peephole=peephole,
            input_kernel_size=input_kernels,
        )
        self.forecaster = nn.ModuleList(
            ConvLSTM(
                0 if layer == 0 else hidden[layer - 1],
                hidden[layer],
                kernels[layer],
                frame_size=frame_size,
                peephole=peephole,
                # layer 0 has no input-to-state convolution: its size is the state kernel's
                input_kernel_size=kernels[0] if layer == 0 else input_kernels[layer],
            )
            for layer in range(len(hidden))
        )
        self.head = nn.Conv2d(sum(hidden), out_channels or in_channels, kernel_size=1)

    def forward(self, x: Tensor, steps: int) -> Tensor:
        """Encode ``x`` [B, T_in, C, H, W]; return ``steps`` predicted frames (logits)."""
        _check_steps(steps)
        _, states = self.encoder(x)
        below: Tensor | None = None
        hidden_sequences = []
        for layer, state in zip(self.forecaster, states, strict=True):
            if below is None:  # layer 0 has no input: it runs from the copied state alone
                below, _ = layer(None, [state], steps=steps)
            else:
                below, _ = layer(below, [state])
            hidden_sequences.append(below)
        stacked = torch.cat(hidden_sequences, dim=2)  # [B, steps, sum(Hc), H, W]
        batch, frame = stacked.shape[0], stacked.shape[-2:]
        logits = self.head(stacked.reshape(batch * steps, -1, *frame))
        return logits.reshape(batch, steps, -1, *frame)


class FCForecaster(nn.Module):
    """Fully connected peephole-LSTM encoder-forecaster on flattened frames (see module doc).

    Args:
        frame_shape: ``(C, H, W)`` of a frame; the LSTM input is its flattening.
        hidden_sizes: one LSTM size per layer (the same for encoder and forecaster).
        output: ``"logits"`` (the prediction is the sigmoid of the output) or ``"linear"``
            (the prediction is the output clamped to [0, 1]); decides what is fed back.
    """

    OUTPUTS = ("logits", "linear")

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        hidden_sizes: Sequence[int],
        output: str = "logits",
    ) -> None:
        super().__init__()
        hidden = list(hidden_sizes)
        if not hidden:
            raise InputError("FCForecaster: hidden_sizes must name at least one layer")
        if output not in self.OUTPUTS:
            raise InputError(f"FCForecaster output: expected one of {self.OUTPUTS}, got {output!r}")
        self.output = output
        self.frame_shape = tuple(frame_shape)
        features = int(torch.tensor(self.frame_shape).prod())
        sizes = [features, *hidden]
        self.encoder = nn.ModuleList(LSTM(sizes[k], sizes[k + 1]) for k in range(len(hidden)))
        self.forecaster = nn.ModuleList(LSTM(sizes[k], sizes[k + 1]) for k in range(len(hidden)))
        self.head = nn.Linear(sum(hidden), features)

    def forward(self, x: Tensor, steps: int) -> Tensor:
        """Encode ``x`` [B, T_in, C, H, W]; return ``steps`` predicted frames (model outputs)."""
        _check_steps(steps)
        if x.dim() != 5 or tuple(x.shape[2:]) != self.frame_shape:
            raise InputError(
                f"FCForecaster input: expected [B, T, {', '.join(map(str, self.frame_shape))}], "
                f"got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        seq = x.reshape(batch, x.shape[1], -1)
        states = []
        for layer in self.encoder:
            seq, state = layer(seq)
            states.append(state)
        frame = x[:, -1].reshape(batch, 1, -1)
        outputs = []
        for _ in range(steps):
            below, tops = frame, []
            for k, layer in enumerate(self.forecaster):
                below, states[k] = layer(below, states[k])
                tops.append(below)
            logits = self.head(torch.cat(tops, dim=-1))
            outputs.append(logits)
            frame = torch.sigmoid(logits) if self.output == "logits" else logits.clamp(0.0, 1.0)
        return torch.cat(outputs, dim=1).reshape(batch, steps, *self.frame_shape)
