"""Input checks shared by the recurrent cores.

Every failure raises :class:`lstmforge.errors.InputError` (a ``ValueError``) naming the field
and the expected shape. The checks are skipped while the module is being traced, scripted,
compiled or exported: the recorded graph must not depend on the values (NaN checks) and traced
sizes are not plain integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lstmforge.errors import InputError


def is_tracing() -> bool:
    """True inside ``torch.jit.trace``/``script``, ``torch.export`` or ``torch.compile``."""
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
    )


def check_tensor(
    name: str, value: object, expected: Sequence[int | str], dtype: torch.dtype
) -> torch.Tensor:
    """Check that ``value`` is a finite, non-empty ``dtype`` tensor of shape ``expected``
    (or the autocast dtype while autocast is on for its device).

    ``expected`` lists the dimensions; an ``int`` must match exactly, a ``str`` (a symbol such
    as ``"B"``) matches any size. The message shows the whole expected shape.
    """
    if is_tracing():
        return value
    shape_text = "[" + ", ".join(str(d) for d in expected) + "]"
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name}: expected a tensor of shape {shape_text}, got {type(value)}")
    # under autocast (Lightning's bf16-mixed) a layer's inputs may be in the autocast dtype
    device = value.device.type
    autocast = torch.is_autocast_enabled(device) and value.dtype == torch.get_autocast_dtype(device)
    if value.dtype != dtype and not autocast:
        raise InputError(f"{name}: expected dtype {dtype} (the parameters'), got {value.dtype}")
    if value.dim() != len(expected) or any(
        isinstance(d, int) and d != s for d, s in zip(expected, value.shape, strict=False)
    ):
        raise InputError(f"{name}: expected shape {shape_text}, got {list(value.shape)}")
    if value.numel() == 0:
        raise InputError(
            f"{name}: expected a non-empty tensor {shape_text}, got {list(value.shape)}"
        )
    if not bool(torch.isfinite(value).all()):
        raise InputError(f"{name}: contains NaN or infinite values; expected finite numbers")
    return value
