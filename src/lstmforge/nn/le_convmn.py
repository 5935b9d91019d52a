"""LE-ConvMN: long-exposure convolutional memory network for sEMG → finger kinematics.

Guo, W., Ma, C., Wang, Z., Zhang, H., Farina, D., Jiang, N., Lin, C., "Long exposure
convolutional memory network for accurate estimation of finger kinematics from surface
electromyographic signals", J. Neural Eng. 18(2), 026027, 2021.

Each time step is one "long exposure" image: a window of the sEMG envelope of all C channels
over W frames, shaped [1, C, W] (channels × time). A stack of ConvLSTM layers (default
64-32-10 hidden channels, 3×3 kernels) reads one image per step, with the hidden and cell
states carried from window to window so that the network sees a long history; a linear
regression head maps the last layer's hidden state [Hc, C, W] to the joint angles.
The choices the paper leaves open are listed in ``docs/le-convmn.md``.

``ring=True`` (our option; the paper does not say how its convolutions pad the channel axis):
when the C electrodes are equally spaced around the forearm (an armband, as in NinaPro DB8 and
the synthetic data), channel C-1 lies next to channel 0, so the ConvLSTM pads the channel
(row) axis circularly instead of with zeros; the time (column) axis keeps zero padding.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lstmforge.nn.convlstm import ConvLSTM, ConvLSTMState


class LEConvMN(nn.Module):
    """ConvLSTM stack over long-exposure images plus a linear head.

    Args:
        n_channels: EMG channels C (image height).
        window: envelope frames per image W (image width).
        n_outputs: joint angles J.
        hidden_channels: hidden channels per ConvLSTM layer.
        kernel_size: odd square kernel size of every layer.
        peephole: ConvLSTM peephole kind (``True``/"pixel", "channel" or ``False``).
        ring: the channels are one ring of equally spaced electrodes (an armband): pad the
            channel axis circularly (``ConvLSTM(row_padding="circular")``), so the kernels see
            channel C-1 and channel 0 as neighbours. Default ``False``: 'same' zero padding.

    ``forward(x [B, T, 1, C, W], state=None) -> (y [B, T, J], state)`` with ``state`` the
    ConvLSTM's list of ``(h, c)`` per layer; feeding consecutive windows in chunks with the
    returned state gives the same outputs as one call.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        n_outputs: int,
        hidden_channels: Sequence[int] = (64, 32, 10),
        kernel_size: int = 3,
        peephole: bool | str = True,
        ring: bool = False,
    ) -> None:
        super().__init__()
        self.ring = bool(ring)
        self.convlstm = ConvLSTM(
            in_channels=1,
            hidden_channels=list(hidden_channels),
            kernel_size=kernel_size,
            num_layers=len(hidden_channels),
            frame_size=(n_channels, window),
            peephole=peephole,
            row_padding="circular" if ring else "zeros",
        )
        self.head = nn.Linear(hidden_channels[-1] * n_channels * window, n_outputs)

    def forward(
        self, x: Tensor, state: ConvLSTMState | None = None
    ) -> tuple[Tensor, ConvLSTMState]:
        """Hidden sequence of the last layer, flattened per step, through the head."""
        hidden, state = self.convlstm(x, state)
        return self.head(hidden.flatten(start_dim=2)), state
