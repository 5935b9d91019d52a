"""Radar units: reflectivity (dBZ) <-> rain rate (mm/h) through a Z-R power law.

The Z-R relation ``Z = a R^b`` (Z in mm^6 m^-3, R in mm/h) with ``dBZ = 10 log10 Z``. The
default constants are the Hong Kong Observatory's, ``a = 58.53``, ``b = 1.56``, used by
Shi et al. (NIPS 2015, Sec. 4.2) for the HKO radar data; Marshall-Palmer is ``a = 200``,
``b = 1.6`` (pysteps' default). The same constants go into the exported metadata (``zr_a``,
``zr_b``) so that ``pysteps.utils.conversion`` converts the same way.

Models see reflectivity scaled to [0, 1]: ``x = clip(dBZ, 0, DBZ_MAX) / DBZ_MAX``; 0 dBZ is the
"no echo" floor (0.07 mm/h with the HKO constants, below every verification threshold).
"""

from __future__ import annotations

import numpy as np

ZR_A_HKO = 58.53
ZR_B_HKO = 1.56
DBZ_FLOOR = 0.0
DBZ_MAX = 70.0


def dbz_to_rainrate(dbz: np.ndarray, a: float = ZR_A_HKO, b: float = ZR_B_HKO) -> np.ndarray:
    """Rain rate R = (10^(dBZ/10) / a)^(1/b) in mm/h."""
    return np.power(np.power(10.0, np.asarray(dbz, dtype=np.float64) / 10.0) / a, 1.0 / b)


def rainrate_to_dbz(rainrate: np.ndarray, a: float = ZR_A_HKO, b: float = ZR_B_HKO) -> np.ndarray:
    """Reflectivity dBZ = 10 log10(a R^b), floored at :data:`DBZ_FLOOR` (R = 0 is no echo)."""
    r = np.asarray(rainrate, dtype=np.float64)
    with np.errstate(divide="ignore"):
        dbz = 10.0 * np.log10(a * np.power(r, b))
    return np.maximum(dbz, DBZ_FLOOR)


def dbz_to_unit(dbz: np.ndarray) -> np.ndarray:
    """Scale reflectivity to the model's [0, 1] range: clip(dBZ, 0, DBZ_MAX) / DBZ_MAX."""
    return (np.clip(dbz, DBZ_FLOOR, DBZ_MAX) / DBZ_MAX).astype(np.float32)


def unit_to_dbz(unit: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dbz_to_unit` (values are clipped to [0, 1] first)."""
    return np.clip(unit, 0.0, 1.0).astype(np.float64) * DBZ_MAX


def unit_to_rainrate(unit: np.ndarray, a: float = ZR_A_HKO, b: float = ZR_B_HKO) -> np.ndarray:
    """Rain rate in mm/h from the model's [0, 1] reflectivity scale."""
    return dbz_to_rainrate(unit_to_dbz(unit), a, b)
