"""Nowcasting baselines: persistence and optical-flow extrapolation.

* **Persistence**: the last observed frame, repeated for every lead time.
* **Optical flow** (the modern form of the ROVER baseline of Shi et al., NIPS 2015): a dense
  motion field from pysteps' Lucas-Kanade method on the last ``FLOW_FRAMES`` observed frames
  (``pysteps.motion.lucaskanade.dense_lucaskanade``), then semi-Lagrangian advection of the
  last frame (``pysteps.extrapolation.semilagrangian.extrapolate``; Germann & Zawadzki, Mon.
  Wea. Rev. 2002); nothing flows in from outside the frame (it is filled with 0).

Both take frames on the model's [0, 1] scale, ``[B, T_in, H, W]``, and return ``[B, steps, H, W]``.
"""

from __future__ import annotations

import numpy as np

FLOW_FRAMES = 3


def persistence(past: np.ndarray, steps: int) -> np.ndarray:
    """Repeat the last observed frame ``steps`` times."""
    return np.repeat(past[:, -1:], steps, axis=1)


def optical_flow_extrapolation(past: np.ndarray, steps: int) -> np.ndarray:
    """Lucas-Kanade motion + semi-Lagrangian extrapolation of the last frame, per sequence."""
    from pysteps.extrapolation.semilagrangian import extrapolate
    from pysteps.motion.lucaskanade import dense_lucaskanade

    out = np.empty((past.shape[0], steps, *past.shape[2:]), dtype=np.float32)
    for b, frames in enumerate(np.asarray(past, dtype=np.float64)):
        velocity = dense_lucaskanade(frames[-FLOW_FRAMES:], verbose=False)
        forecast = extrapolate(frames[-1], velocity, steps, outval=0.0)
        out[b] = np.nan_to_num(forecast, nan=0.0)
    return out


BASELINES = {"persistence": persistence, "optical_flow": optical_flow_extrapolation}
