"""Lowering a 'same'-padded 2-D convolution to a matrix times patch vectors (im2col).

A convolution of x [N, C, H, W] with a kernel [O, C, k, k] (odd k, zero padding k // 2) equals,
at every pixel, the matrix ``kernel.reshape(O, C * k * k)`` times the pixel's patch vector
ordered (channel, kernel row, kernel column). The engine runs ConvLSTM gates this way, so each
gate convolution is one sparse matrix applied to H * W patch vectors (Chellapilla, Puri, Simard,
"High performance convolutional neural networks for document processing", 2006). The input and
the state convolutions of a layer take their patches with their own kernel sizes (kx and k may
differ); 'same' padding gives both H * W patch vectors, so the two products add per pixel.
With ``row_padding="circular"`` (a ConvLSTM whose rows form a ring) the rows wrap around
(``np.pad`` mode "wrap") and the columns are still zero padded.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lstmforge.errors import InputError


def patches(x: np.ndarray, kernel_size: int, row_padding: str = "zeros") -> np.ndarray:
    """Patch vectors of x [N, C, H, W]: returns [N * H * W, C * k * k], pixels in row-major order
    (the transpose of a C-contiguous [C * k * k, N * H * W] array).

    Works for integer codes and floats alike (zero padding and wrapping are exact in both).
    ``kernel_size`` must be odd: 'same' padding keeps H x W only then. ``row_padding``:
    ``"zeros"`` pads k // 2 zero rows and columns on every side; ``"circular"`` takes the
    k // 2 rows above / below the frame from its bottom / top (row r - H, r + H wrap to r;
    needs k // 2 <= H) and pads the columns with zeros.
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)):
        raise InputError(f"patches kernel_size: expected an odd positive int, got {kernel_size!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InputError(f"patches kernel_size: expected an odd positive int, got {kernel_size}")
    if row_padding not in ("zeros", "circular"):
        raise InputError(
            f"patches row_padding: expected 'zeros' or 'circular', got {row_padding!r}"
        )
    n, c, h, w = x.shape
    pad = kernel_size // 2
    if row_padding == "circular":
        if pad > h:
            raise InputError(
                f"patches row_padding='circular': kernel size {kernel_size} wraps {pad} rows, "
                f"the frame has {h}"
            )
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (0, 0)), mode="wrap")
        padded = np.pad(x, ((0, 0), (0, 0), (0, 0), (pad, pad)))
    else:
        padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (kernel_size, kernel_size), axis=(2, 3))  # N C H W k k
    # one copy in (channel, kernel row, kernel column) x pixel order, its rows contiguous runs
    # of the padded frames; returned transposed (a view): the layout the CSR kernel reads
    columns = np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3))
    return columns.reshape(c * kernel_size**2, n * h * w).T


def to_channels_first(rows: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    """Per-pixel results [N * H * W, O] back to feature maps [N, O, H, W]."""
    return rows.reshape(n, h, w, -1).transpose(0, 3, 1, 2)
