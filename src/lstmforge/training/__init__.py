"""Shared training infrastructure (Lightning): every task trains through :func:`fit`.

Checkpoints every epoch and on interrupt, ``resume``, early stopping, seeds, bf16 on GPU,
progress bars, CSV and TensorBoard logs, and data-parallel training over devices and nodes
(Lightning DDP; also under ``torchrun``). Checkpoints are read back safely and checked against
the task that wrote them by :func:`load_checkpoint`.
"""

from lstmforge.training.checkpoint import load_checkpoint, save_checkpoint
from lstmforge.training.trainer import FitResult, TrainConfig, fit

__all__ = ["FitResult", "TrainConfig", "fit", "load_checkpoint", "save_checkpoint"]
