"""Plain prediction and pysteps-ready export of nowcasts.

:func:`predict` takes past frames only (no targets) and any horizon, which may differ from the
training output length; the number of input frames may differ too (the encoder reads any
length). Frames are in the units of the dataset the model was trained on: dBZ for radar,
intensities (uint8 0-255 or floats in [0, 1]) for Moving MNIST.

:func:`export_nowcast` writes a radar nowcast as plain arrays: an ``.npz`` (no pickles) with
``precip`` (rain rate in mm/h, float32 ``[T, H, W]``) and ``metadata``, a JSON object with the
keys pysteps' importers produce (``unit``, ``transform``, ``accutime``, ``zr_a``, ``zr_b``,
``threshold``, ``zerovalue``, ``xpixelsize``, ``ypixelsize``, ``x1``, ``x2``, ``y1``, ``y2``,
``yorigin``, ``cartesian_unit``, ``timestep``), so ``pysteps.utils.conversion``,
``pysteps.verification`` and ``pysteps.visualization`` accept ``load_nowcast(path)``'s pair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmforge.data.units import ZR_A_HKO, ZR_B_HKO, dbz_to_rainrate, unit_to_dbz
from lstmforge.errors import InputError
from lstmforge.io import atomic_path
from lstmforge.tasks.nowcast.data import check_frames, to_unit_function
from lstmforge.tasks.nowcast.module import NowcastModule

RAIN_THRESHOLD_MMH = 0.1


def input_units(module: NowcastModule) -> str:
    """``"dBZ"`` for a radar model, ``"intensity"`` for a Moving MNIST one."""
    return "dBZ" if module.hparams.data_config["dataset"] == "radar" else "intensity"


def predict(
    module: NowcastModule, past: np.ndarray, horizon: int, batch_size: int = 16
) -> np.ndarray:
    """Forecast ``horizon`` frames after ``past`` (``[T, H, W]`` or ``[N, T, H, W]``).

    Returns float32 ``[horizon, H, W]`` or ``[N, horizon, H, W]`` in the input's units (dBZ for
    radar models, [0, 1] intensity for Moving MNIST models).
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise InputError(f"horizon: expected a positive int, got {horizon!r}")
    single = isinstance(past, np.ndarray) and past.ndim == 3
    frames = check_frames(past[None] if single else past, "past")
    size = module.hparams.data_config["frame_size"]
    if frames.shape[-2:] != (size, size):
        raise InputError(
            f"past: frames are {frames.shape[-2:]}, the model expects ({size}, {size})"
        )
    units = input_units(module)
    unit = to_unit_function(units)(frames)
    module.eval()
    outputs = []
    for start in range(0, len(unit), batch_size):
        chunk = torch.from_numpy(unit[start : start + batch_size]).unsqueeze(2)
        outputs.append(module.forecast(chunk, horizon)[:, :, 0].numpy())
    forecast = np.concatenate(outputs)
    if units == "dBZ":
        forecast = unit_to_dbz(forecast).astype(np.float32)
    return forecast[0] if single else forecast


def pysteps_metadata(
    shape: tuple[int, int],
    timestep_minutes: float = 6.0,
    zr_a: float = ZR_A_HKO,
    zr_b: float = ZR_B_HKO,
    pixel_km: float = 1.0,
) -> dict[str, Any]:
    """Metadata of a rain-rate field in the form pysteps' importers return it."""
    height, width = shape
    return {
        "unit": "mm/h",
        "transform": None,
        "accutime": float(timestep_minutes),
        "timestep": float(timestep_minutes),
        "zr_a": float(zr_a),
        "zr_b": float(zr_b),
        "threshold": RAIN_THRESHOLD_MMH,
        "zerovalue": 0.0,
        "xpixelsize": pixel_km * 1000.0,
        "ypixelsize": pixel_km * 1000.0,
        "x1": 0.0,
        "x2": width * pixel_km * 1000.0,
        "y1": 0.0,
        "y2": height * pixel_km * 1000.0,
        "yorigin": "upper",
        "cartesian_unit": "m",
        "institution": "lstmforge",
    }


def export_nowcast(
    path: str | Path,
    dbz: np.ndarray,
    timestep_minutes: float = 6.0,
    zr_a: float = ZR_A_HKO,
    zr_b: float = ZR_B_HKO,
) -> Path:
    """Write a reflectivity nowcast ``[T, H, W]`` (dBZ) as rain rate + pysteps metadata."""
    if np.ndim(dbz) != 3:
        raise InputError(f"nowcast: expected [T, H, W] frames, got shape {np.shape(dbz)}")
    rain = dbz_to_rainrate(dbz, zr_a, zr_b).astype(np.float32)
    rain[rain < RAIN_THRESHOLD_MMH] = 0.0
    meta = pysteps_metadata(rain.shape[1:], timestep_minutes, zr_a, zr_b)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, precip=rain, metadata=np.array(json.dumps(meta)))
    return Path(path)


def load_nowcast(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an :func:`export_nowcast` file: ``(precip [T, H, W] mm/h, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: nowcast file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            precip, meta = npz["precip"], json.loads(str(npz["metadata"]))
    except (ValueError, KeyError, OSError) as err:
        raise InputError(f"{path}: not a lstmforge nowcast file ({err})") from None
    return precip, meta
