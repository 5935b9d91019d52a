"""Reading task checkpoints back safely.

:func:`save_checkpoint` writes a module outside a training run (the model ``compress
--retrain-epochs`` fine-tuned) in the same layout, so every task command reads it.

Checkpoints are loaded with ``torch.load(..., weights_only=True)`` (no pickled code from
files), and checked: the file must exist, be a Lightning checkpoint, and come from the task
(and, when asked, the architecture) the caller expects. Each mismatch is an
:class:`~lstmforge.errors.InputError` naming the file and what was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lstmforge.errors import InputError
from lstmforge.io import atomic_path


def load_checkpoint(
    path: str | Path, task: str | None = None, arch: str | None = None
) -> dict[str, Any]:
    """Load ``path`` and return ``{"hparams": dict, "state_dict": dict, "epoch": int}``.

    ``task`` is the ``hparams["task"]`` the checkpoint must carry (e.g. ``"nowcast"``; None:
    any task, but it must record one); ``arch``, when given, must equal ``hparams["arch"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on foreign or damaged bytes
        raise InputError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(raw, dict) or "state_dict" not in raw:
        raise InputError(f"{path}: not a lstmforge checkpoint (no 'state_dict')")
    hparams = dict(raw.get("hyper_parameters") or {})
    found = hparams.get("task")
    if task is None and not isinstance(found, str):
        raise InputError(f"{path}: checkpoint records no task (hparams['task'])")
    if task is not None and found != task:
        raise InputError(f"{path}: checkpoint is from task {found!r}, expected {task!r}")
    if arch is not None and hparams.get("arch") != arch:
        raise InputError(
            f"{path}: checkpoint is architecture {hparams.get('arch')!r}, expected {arch!r}"
        )
    return {"hparams": hparams, "state_dict": raw["state_dict"], "epoch": int(raw.get("epoch", -1))}


def load_weights(module: torch.nn.Module, loaded: dict[str, Any], path: str | Path) -> None:
    """Load ``loaded["state_dict"]`` (from :func:`load_checkpoint`) into ``module``; weights
    that do not fit it are an :class:`InputError` naming ``path`` and the first mismatch."""
    if any(".parametrizations." in key for key in loaded["state_dict"]):
        raise InputError(
            f"{path}: a checkpoint from inside a prune-retrain schedule (weights and masks held "
            "apart); use the model `lstmforge compress --retrain-epochs` wrote next to its "
            "artifact (X-retrained.ckpt)"
        )
    try:
        module.load_state_dict(loaded["state_dict"])
    except RuntimeError as err:
        lines = str(err).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(err)
        arch = loaded["hparams"].get("arch")
        where = f"architecture {arch!r}" if arch else type(module).__name__
        raise InputError(f"{path}: weights do not fit {where}: {first}") from None


def save_checkpoint(module: torch.nn.Module, path: str | Path) -> Path:
    """Write ``module``'s weights and ``hparams`` as a checkpoint :func:`load_checkpoint`
    (and every task's ``--checkpoint``) reads: the ``state_dict`` / ``hyper_parameters``
    entries of a Lightning checkpoint (``epoch`` -1: not from a training run), without
    optimizer state. Atomic."""
    hparams = dict(getattr(module, "hparams", {}) or {})
    if not isinstance(hparams.get("task"), str):
        raise InputError(f"{path}: the module records no task (hparams['task']) to save")
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "hyper_parameters": hparams, "epoch": -1}, tmp)
    return Path(path)
