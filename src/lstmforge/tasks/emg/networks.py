"""The two trained regressors: LE-ConvMN and the LSTM baseline, behind one factory.

Both read a sequence of long-exposure windows ``x`` [B, T, 1, C, W] and return
``(y [B, T, J], state)`` with the recurrent state carried between calls. The LSTM baseline
(the recurrent baseline of Guo et al., 2021) sees each window flattened to a C·W vector and is
a :class:`lstmforge.nn.LSTM` (peephole) stack with a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lstmforge.errors import InputError
from lstmforge.nn import LSTM
from lstmforge.nn.le_convmn import LEConvMN

ARCHS = ("le-convmn", "lstm")
PEEPHOLES = {"pixel": "pixel", "channel": "channel", "none": False}


def check_network_options(
    arch: str, ring_channels: bool = False, peephole: str = "pixel", kernel_size: int = 3
) -> None:
    """Refuse options the architecture does not have, naming the flag."""
    if arch not in ARCHS:
        raise InputError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if peephole not in PEEPHOLES:
        raise InputError(f"--peephole: expected one of {', '.join(PEEPHOLES)}, got {peephole!r}")
    if arch != "le-convmn" and ring_channels:
        raise InputError(
            f"--ring-channels: only for --arch le-convmn, got --arch {arch} (the LSTM "
            "baseline has no convolution over the channels)"
        )
    if arch != "le-convmn" and peephole != "pixel":
        raise InputError(f"--peephole: only for --arch le-convmn, got --arch {arch}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise InputError(f"--kernel-size: expected an odd int, got {kernel_size!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InputError(f"--kernel-size: expected an odd size >= 1, got {kernel_size}")
    if arch != "le-convmn" and kernel_size != 3:
        raise InputError(f"--kernel-size: only for --arch le-convmn, got --arch {arch}")


class LSTMRegressor(nn.Module):
    """Peephole LSTM over flattened windows, linear head on every step's output."""

    def __init__(self, n_channels: int, window: int, n_outputs: int, hidden: Sequence[int]) -> None:
        super().__init__()
        if len(set(hidden)) != 1:
            raise InputError(
                f"the LSTM regressor needs one hidden size for all layers, got {hidden}"
            )
        self.lstm = LSTM(n_channels * window, hidden[0], num_layers=len(hidden))
        self.head = nn.Linear(hidden[0], n_outputs)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None):
        """``x`` [B, T, 1, C, W] → ``(y [B, T, J], (h, c))``."""
        y, state = self.lstm(x.flatten(start_dim=2), state)
        return self.head(y), state


def build_network(
    arch: str,
    n_channels: int,
    window: int,
    n_outputs: int,
    hidden: Sequence[int],
    ring_channels: bool = False,
    peephole: str = "pixel",
    kernel_size: int = 3,
) -> nn.Module:
    """LE-ConvMN (``hidden`` = ConvLSTM channels per layer) or the LSTM regressor.

    LE-ConvMN only: ``ring_channels`` — the channels are one ring of equally spaced
    electrodes, padded circularly (:class:`~lstmforge.nn.le_convmn.LEConvMN` ``ring``);
    ``peephole`` — ``"pixel"`` (Shi et al.'s Hadamard peepholes, one weight per channel ×
    time position), ``"channel"`` (one per hidden channel) or ``"none"``; ``kernel_size`` —
    the square kernel of every ConvLSTM layer (the paper's 3; odd).
    """
    check_network_options(arch, ring_channels, peephole, kernel_size)
    if arch == "le-convmn":
        return LEConvMN(
            n_channels,
            window,
            n_outputs,
            hidden_channels=tuple(hidden),
            kernel_size=kernel_size,
            ring=ring_channels,
            peephole=PEEPHOLES[peephole],
        )
    return LSTMRegressor(n_channels, window, n_outputs, hidden)
