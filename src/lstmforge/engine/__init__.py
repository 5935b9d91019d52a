"""The golden integer model of the datapath and its fast kernels.

* :mod:`~lstmforge.engine.fixed_point`: formats, rounding, saturation (the bit-exact rules);
* :mod:`~lstmforge.engine.activation_units`: hardware sigmoid/tanh (LUT, interpolated LUT, PLAN);
* :func:`run`: inference of a CompressedModel (float in/out at the edges);
* :func:`substitute`: a float model with its compressed submodules running on the engine;
* :func:`trace_diff`: where two back ends (or modes) first disagree.

``run``/``substitute``/``trace_diff`` are imported lazily, so that :mod:`lstmforge.compress`
can use the fixed-point rules without a circular import. Importing the package first makes
numba stamp the engine's cached kernels with all engine sources
(:mod:`~lstmforge.engine.kernel_cache`).
"""

from typing import Any

from lstmforge.engine.kernel_cache import install

install()

_LAZY = {
    "run": "lstmforge.engine.runner",
    "run_block": "lstmforge.engine.runner",
    "substitute": "lstmforge.engine.substitution",
    "saturation_counts": "lstmforge.engine.substitution",
    "trace_run": "lstmforge.engine.tracing",
    "trace_diff": "lstmforge.engine.tracing",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstmforge.engine' has no attribute {name!r}")
