"""Task registry in the style of pysteps' ``interface.get_method``.

A task module exposes ``SPEC: TaskSpec``. The registry maps a name to that module lazily, so
importing :mod:`lstmforge.tasks` stays cheap and one task's dependencies never load for
another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmforge.errors import InputError

if TYPE_CHECKING:
    import lightning as L

_REGISTRY = {
    "nowcast": "lstmforge.tasks.nowcast.spec",
    "speech": "lstmforge.tasks.speech.spec",
    "emg": "lstmforge.tasks.emg.spec",
}


@dataclass(frozen=True)
class TaskSpec:
    """What a task-agnostic stage needs to know about a task.

    - ``headline(hparams)``: the headline metric of a model with these hparams, as
      ``(key in the dict evaluate returns, higher_is_better)`` — e.g. ``("per", False)`` for
      speech, ``("csi_0.5", True)`` for radar nowcasting, ``("cross_entropy", False)`` for
      Moving MNIST.
    - ``load_module(checkpoint)``: the task's ``LightningModule`` restored from a checkpoint
      (validated with :func:`lstmforge.training.load_checkpoint`), in eval mode, on CPU.
    - ``build_datamodule(hparams, data)``: the data the checkpoint was trained on, rebuilt from
      its ``hparams`` (``data``: optional path to real data, ``None`` for the synthetic default).
    - ``evaluate(module, datamodule)``: metrics on the test split as ``{name: float}``. The
      module's recurrent submodules may have been replaced by engine-backed ones
      (:func:`lstmforge.engine.substitute`), so it must only call their ``forward``.
    """

    name: str
    headline: Callable[[dict[str, Any]], tuple[str, bool]]
    load_module: Callable[[Path], L.LightningModule]
    build_datamodule: Callable[[dict[str, Any], Path | None], L.LightningDataModule]
    evaluate: Callable[[L.LightningModule, L.LightningDataModule], dict[str, float]]


def task_names() -> list[str]:
    """Names of the registered tasks."""
    return sorted(_REGISTRY)


def get_task(name: str) -> TaskSpec:
    """Return the :class:`TaskSpec` registered under ``name``."""
    if name not in _REGISTRY:
        raise InputError(f"unknown task {name!r}; expected one of {', '.join(task_names())}")
    return importlib.import_module(_REGISTRY[name]).SPEC
