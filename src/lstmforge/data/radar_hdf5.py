"""Radar sequences on disk: HDF5 with one ``[N, T, H, W]`` dataset.

Layout read (and written) here:

* dataset ``radar`` (another name can be passed): float or integer array ``[N, T, H, W]``,
  N sequences of T frames of H x W pixels, all finite;
* attribute ``units`` on the dataset: ``"dBZ"`` (values in [-32, 95]) or ``"mm/h"``
  (values in [0, 500]); rain rates are converted to dBZ with the Z-R relation;
* optional attributes ``zr_a``, ``zr_b`` (Z-R constants, default HKO's 58.53 and 1.56) and
  ``timestep_minutes`` (default 6).

:func:`load_radar_hdf5` validates all of this and returns reflectivity in dBZ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lstmforge.data.units import ZR_A_HKO, ZR_B_HKO, rainrate_to_dbz
from lstmforge.errors import InputError
from lstmforge.io import atomic_path

DATASET = "radar"
VALID_RANGES = {"dBZ": (-32.0, 95.0), "mm/h": (0.0, 500.0)}


@dataclass(frozen=True)
class RadarSequences:
    """Reflectivity sequences ``dbz`` (float32 ``[N, T, H, W]``) with their metadata."""

    dbz: np.ndarray
    zr_a: float
    zr_b: float
    timestep_minutes: float


def load_radar_hdf5(path: str | Path, dataset: str = DATASET) -> RadarSequences:
    """Read and validate radar sequences from ``path``; rain rates become dBZ."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: radar file not found")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from None
    with fh:
        if dataset not in fh or not isinstance(fh[dataset], h5py.Dataset):
            raise InputError(f"{path}: no dataset {dataset!r} (found {sorted(fh.keys())})")
        node = fh[dataset]
        where = f"{path}:{dataset}"
        if node.ndim != 4:
            raise InputError(f"{where}: expected [N, T, H, W], got shape {node.shape}")
        if node.dtype.kind not in "fiu":
            raise InputError(f"{where}: expected a numeric dtype, got {node.dtype}")
        units = node.attrs.get("units")
        units = units.decode() if isinstance(units, bytes) else units
        if units not in VALID_RANGES:
            raise InputError(f"{where}: attribute 'units' must be 'dBZ' or 'mm/h', got {units!r}")
        zr_a = float(node.attrs.get("zr_a", ZR_A_HKO))
        zr_b = float(node.attrs.get("zr_b", ZR_B_HKO))
        timestep = float(node.attrs.get("timestep_minutes", 6.0))
        try:
            values = node[()].astype(np.float32)
        except OSError as err:
            raise InputError(f"{where}: cannot read the data ({err})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        seq, frame = np.argwhere(bad)[0][:2]
        raise InputError(f"{where}: non-finite values (first in sequence {seq}, frame {frame})")
    low, high = VALID_RANGES[units]
    if values.min() < low or values.max() > high:
        raise InputError(
            f"{where}: values in [{values.min():g}, {values.max():g}] outside the {units} range "
            f"[{low:g}, {high:g}]"
        )
    if zr_a <= 0 or zr_b <= 0:
        raise InputError(f"{where}: Z-R constants must be positive, got a={zr_a}, b={zr_b}")
    dbz = values if units == "dBZ" else rainrate_to_dbz(values, zr_a, zr_b).astype(np.float32)
    return RadarSequences(dbz=dbz, zr_a=zr_a, zr_b=zr_b, timestep_minutes=timestep)


def save_radar_hdf5(
    path: str | Path,
    values: np.ndarray,
    units: str = "dBZ",
    zr_a: float = ZR_A_HKO,
    zr_b: float = ZR_B_HKO,
    timestep_minutes: float = 6.0,
    dataset: str = DATASET,
) -> Path:
    """Write ``values`` ``[N, T, H, W]`` in the layout :func:`load_radar_hdf5` reads, atomically."""
    if units not in VALID_RANGES:
        raise InputError(f"units must be 'dBZ' or 'mm/h', got {units!r}")
    if np.ndim(values) != 4:
        raise InputError(f"radar values must be [N, T, H, W], got shape {np.shape(values)}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            node = fh.create_dataset(dataset, data=np.asarray(values), compression="gzip")
            node.attrs.update(units=units, zr_a=zr_a, zr_b=zr_b, timestep_minutes=timestep_minutes)
    return Path(path)
