"""The nowcasting ``LightningModule``: patch reshaping around a named encoder-forecaster.

``forward(past, steps)`` maps ``past [B, T_in, 1, H, W]`` on the [0, 1] scale to the model
output for ``steps`` future frames (logits for the cross-entropy loss, values for the MSE
losses); ``forecast`` turns it into frames in [0, 1] (:func:`.losses.to_prediction`). The hyper-parameters (``task``,
``arch``, the loss, learning rate and the whole :class:`~.data.NowcastData`) are saved in
every checkpoint, so the model and its data can be rebuilt from it.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from lstmforge.data.patches import from_patches, to_patches
from lstmforge.errors import InputError
from lstmforge.tasks.nowcast.configs import build_model, patch_size
from lstmforge.tasks.nowcast.losses import LOSSES, nowcast_loss, to_prediction

TASK = "nowcast"


class NowcastModule(L.LightningModule):
    """Encoder-forecaster training and inference for one named architecture."""

    def __init__(
        self,
        arch: str,
        data_config: dict[str, Any],
        loss: str,
        lr: float = 1e-3,
        peephole: str | None = None,
        task: str = TASK,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise InputError(f"--loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        if not 0 < lr < math.inf:
            raise InputError(f"--lr: must be a finite number > 0, got {lr}")
        self.save_hyperparameters()
        self.patch = patch_size(arch)
        self.model = build_model(arch, data_config["frame_size"], loss=loss, peephole=peephole)

    def forward(self, past: torch.Tensor, steps: int) -> torch.Tensor:
        """Model output ``[B, steps, 1, H, W]`` for the frames after ``past [B, T, 1, H, W]``."""
        logits = self.model(to_patches(past, self.patch), steps)
        return from_patches(logits, self.patch)

    @torch.no_grad()
    def forecast(self, past: torch.Tensor, steps: int) -> torch.Tensor:
        """Predicted frames on the [0, 1] scale, ``[B, steps, 1, H, W]``."""
        return to_prediction(self.hparams.loss, self(past, steps))

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        past, future = batch
        return nowcast_loss(self.hparams.loss, self(past, future.shape[1]), future)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self.log("val_loss", self._loss(batch), prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
