"""The Lightning module that trains either regressor with the MSE loss.

Loss: mean squared error on per-subject standardised joint angles, averaged over joints and
windows (Guo et al., 2021, train with MSE). Optimiser: Adam (Kingma & Ba, 2015).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from lstmforge.tasks.emg.networks import build_network

DEFAULT_HIDDEN = {"le-convmn": (64, 32, 10), "lstm": (128, 128)}


class EMGRegressor(L.LightningModule):
    """``forward(x [B, T, 1, C, W], state) -> (y [B, T, J], state)``; hparams rebuild it.

    ``hidden=None`` takes :data:`DEFAULT_HIDDEN` of the architecture. ``data`` (the
    :class:`~lstmforge.tasks.emg.dataset.EMGDataConfig` as a dict), ``chunk``,
    ``batch_size``, ``validation`` and ``augmentation`` (the
    :class:`~lstmforge.data.emg_augmentation.ArmbandAugmentation` as a dict; see
    :mod:`~lstmforge.tasks.emg.datamodule`) are kept in the checkpoint's hparams so that
    :func:`lstmforge.tasks.emg.spec.build_datamodule` rebuilds exactly the training data.
    ``ring_channels``, ``peephole`` and ``kernel_size`` (LE-ConvMN only,
    :func:`~lstmforge.tasks.emg.networks.build_network`) default to what checkpoints saved
    before they existed used, so those load unchanged.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        n_outputs: int,
        data: dict[str, Any],
        arch: str = "le-convmn",
        hidden: tuple[int, ...] | None = None,
        lr: float = 1e-3,
        chunk: int = 16,
        batch_size: int = 8,
        validation: str = "chunks",
        augmentation: dict[str, float] | None = None,
        task: str = "emg",
        ring_channels: bool = False,
        peephole: str = "pixel",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        hidden = hidden or DEFAULT_HIDDEN.get(arch, ())
        self.net = build_network(
            arch, n_channels, window, n_outputs, hidden, ring_channels, peephole, kernel_size
        )

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.net(x, state)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        prediction, _ = self(x)
        return F.mse_loss(prediction, y)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], _: int) -> None:
        if len(batch) == 2:  # zero-state chunks [B, T, ...]
            self.log("val_loss", self._loss(batch), prog_bar=True)
            return
        x, y, mask = batch  # one whole recording [K, ...], state carried as in evaluation
        state, outputs = None, []
        for start in range(0, x.shape[0], 256):
            out, state = self(x[None, start : start + 256], state)
            outputs.append(out[0])
        loss = F.mse_loss(torch.cat(outputs)[mask], y[mask])
        self.log("val_loss", loss, prog_bar=True, batch_size=int(mask.sum()))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
