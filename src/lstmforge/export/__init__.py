"""Export of a CompressedModel to other targets: a self-contained C99 implementation.

:func:`export_c` (``docs/export-c.md``): :mod:`.plan` checks the model and derives the
constants, :mod:`.c_runtime` is the fixed C arithmetic, :mod:`.c_sources` renders the files,
:mod:`.c_export` writes them atomically.
"""

from lstmforge.export.c_export import default_prefix, export_c

__all__ = ["default_prefix", "export_c"]
