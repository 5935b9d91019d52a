"""lstmforge: recurrent networks from training to a sparse fixed-point ESE-style accelerator.

Pipeline (see docs/architecture.md): data -> nn + tasks -> compress -> CompressedModel (.lfz)
-> engine (bit-exact integers) / hw.sim (cycle-level ESE model).
"""

from lstmforge.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
