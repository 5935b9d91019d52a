"""The Lightning module of the speech task: the LSTMP acoustic model trained with CTC.

Loss: :func:`torch.nn.functional.ctc_loss` (blank 0, mean over utterances of the loss divided
by the target length, infeasible alignments zeroed). Validation logs ``val_loss`` and the
greedy-decoding ``val_per`` (the mean of per-batch PERs; ``speech evaluate`` gives the exact
corpus PER). All settings needed to rebuild the model and its features sit in
``hparams`` (``task="speech"``, ``arch="lstmp"``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from lstmforge.metrics.phone_error_rate import edit_counts
from lstmforge.tasks.speech.decoding import greedy_decode
from lstmforge.tasks.speech.features import FeatureConfig
from lstmforge.tasks.speech.model import AcousticModel, ModelConfig

ARCH = "lstmp"


class SpeechRecognizer(L.LightningModule):
    """CTC training of :class:`~lstmforge.tasks.speech.model.AcousticModel`.

    Args:
        model: ``ModelConfig`` fields; features: ``FeatureConfig`` fields.
        data: how to rebuild the training data (``dataset``, ``data_dir``,
            ``corpus_utterances``, ``corpus_seed``, ``timit_test``, ``batch_size``); None for a
            model that was not trained (e.g. one only timed by ``speech profile --config``).
        feature_mean / feature_std: global normalisation statistics (lists) or None.
        learning_rate: Adam step size.
        config: the named configuration the sizes came from (for the record).
    """

    def __init__(
        self,
        model: dict[str, Any],
        features: dict[str, Any],
        data: dict[str, Any] | None = None,
        feature_mean: list[float] | None = None,
        feature_std: list[float] | None = None,
        learning_rate: float = 1e-3,
        config: str = "custom",
        task: str = "speech",
        arch: str = ARCH,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_config = ModelConfig(**model)
        self.feature_config = FeatureConfig(**features)
        self.model = AcousticModel(
            input_size=self.feature_config.input_size,
            hidden_size=self.model_config.hidden_size,
            proj_size=self.model_config.proj_size,
            num_layers=self.model_config.num_layers,
            dropout=self.model_config.dropout,
        )

    def feature_statistics(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Global normalisation statistics as arrays (None for per-utterance normalisation)."""
        mean, std = self.hparams.feature_mean, self.hparams.feature_std
        if mean is None or std is None:
            return None, None
        return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] features -> [B, T, classes] log-probabilities."""
        return self.model(x)

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        x, x_lengths, y, y_lengths = batch
        log_probs = self(x)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1).float(),
            y,
            x_lengths,
            y_lengths,
            blank=0,
            reduction="mean",
            zero_infinity=True,
        )
        return loss, log_probs

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, log_probs = self._loss(batch)
        _, x_lengths, y, y_lengths = batch
        errors = reference = 0
        for k in range(log_probs.shape[0]):
            hypothesis = greedy_decode(log_probs[k, : x_lengths[k]].float().cpu().numpy())
            counts = edit_counts(y[k, : y_lengths[k]].tolist(), hypothesis)
            errors += counts.errors
            reference += counts.reference_length
        size = batch[0].shape[0]
        self.log("val_loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log(
            "val_per",
            100.0 * errors / max(reference, 1),
            prog_bar=True,
            batch_size=size,
            sync_dist=True,
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
