"""Weight quantization and the choice of activation formats from calibrated ranges.

* Weights: ``weight_bits`` (default 12) with a per-matrix fractional width, the finest that
  holds the matrix's largest magnitude (:func:`~lstmforge.engine.fixed_point.format_for_range`);
  codes are rounded half up and saturated. A weight kept by pruning never rounds to zero: it
  becomes ±1 code, so the sparsity pattern (and the PE balance) survives quantization.
* Activations and states: ``activation_bits`` (default 16), with the fractional width chosen
  from the largest magnitude seen in calibration (on training data) or, without calibration,
  from the documented default ranges below.

References: ESE (Han et al., FPGA 2017) §4 (12-bit weights, 16-bit activations); Jacob et al.,
"Quantization and training of neural networks for efficient integer-arithmetic-only
inference", CVPR 2018 (range calibration).
"""

from __future__ import annotations

import numpy as np

from lstmforge.engine.fixed_point import QFormat, format_for_range, quantize
from lstmforge.errors import InputError

# Ranges assumed for activation formats when no calibration data is given.
DEFAULT_RANGES = {"input": 8.0, "cell": 8.0, "hidden": 0.999, "projection": 4.0, "linear": 32.0}


def weight_format(weights: np.ndarray, bits: int) -> QFormat:
    """The per-matrix format: ``bits`` bits, finest fraction holding max |w|."""
    return format_for_range(float(np.max(np.abs(weights), initial=0.0)), bits)


def quantize_weights(weights: np.ndarray, mask: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Codes of the kept weights (``mask``), zero elsewhere; kept weights never become 0."""
    codes = quantize(np.where(mask, weights, 0.0), fmt)
    lost = mask & (codes == 0)
    codes[lost] = np.where(weights[lost] < 0, -1, 1)
    return codes


def activation_formats(
    kind: str,
    config: dict,
    ranges: dict[str, float] | None,
    bits: int,
    cell_guard_bits: int = 0,
) -> dict[str, QFormat]:
    """Formats of a block's signals (keys of :func:`~lstmforge.compress.artifact.format_names`).

    ``ranges`` maps format keys to the largest magnitude seen in calibration; missing keys use
    :data:`DEFAULT_RANGES`. Cell states get ``cell_guard_bits`` integer bits above their
    calibrated range: c_t = f_t c_{t-1} + i_t g_t integrates over time, so streaming longer
    sequences than the calibration data (a whole recording after short chunks) drives it past
    what calibration saw.
    """
    if not 4 <= bits <= 32:
        raise InputError(f"activation_bits: expected 4..32, got {bits}")
    if not 0 <= cell_guard_bits <= 8:
        raise InputError(f"cell_guard_bits: expected 0..8, got {cell_guard_bits}")
    ranges = ranges or {}

    def pick(key: str, default: float, guard_bits: int = 0) -> QFormat:
        return format_for_range(ranges.get(key, default) * 2.0**guard_bits, bits)

    if kind == "linear":
        return {
            "input": pick("input", DEFAULT_RANGES["input"]),
            "output": pick("output", DEFAULT_RANGES["linear"]),
        }
    formats = {"input": pick("input", DEFAULT_RANGES["input"])}
    projected = kind == "lstm" and config["proj_size"] > 0
    for k in range(config["num_layers"]):
        formats[f"l{k}.cell"] = pick(f"l{k}.cell", DEFAULT_RANGES["cell"], cell_guard_bits)
        out_default = DEFAULT_RANGES["projection" if projected else "hidden"]
        formats[f"l{k}.output"] = pick(f"l{k}.output", out_default)
    return formats
