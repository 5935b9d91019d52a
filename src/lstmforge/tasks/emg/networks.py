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
) -> nn.Module:
    """LE-ConvMN (``hidden`` = ConvLSTM channels per layer) or the LSTM regressor.

    ``ring_channels``: the channels are one ring of equally spaced electrodes; LE-ConvMN then
    pads its channel axis circularly (:class:`~lstmforge.nn.le_convmn.LEConvMN` ``ring``). The
    LSTM regressor has no convolution to pad, so it refuses the option.
    """
    if arch == "le-convmn":
        return LEConvMN(
            n_channels, window, n_outputs, hidden_channels=tuple(hidden), ring=ring_channels
        )
    if arch == "lstm":
        if ring_channels:
            raise InputError(
                "--ring-channels: only for --arch le-convmn (the LSTM baseline has no "
                "convolution over the channels)"
            )
        return LSTMRegressor(n_channels, window, n_outputs, hidden)
    raise InputError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
