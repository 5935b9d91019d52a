"""The speech task's entry in the task registry (:func:`lstmforge.tasks.get_task`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lstmforge.errors import InputError
from lstmforge.tasks.interface import TaskSpec
from lstmforge.tasks.speech.datamodule import SpeechDataModule
from lstmforge.tasks.speech.evaluate import evaluate
from lstmforge.tasks.speech.features import FeatureConfig
from lstmforge.tasks.speech.module import ARCH, SpeechRecognizer
from lstmforge.training.checkpoint import load_checkpoint, load_weights


def load_module(checkpoint: str | Path) -> SpeechRecognizer:
    """The trained :class:`SpeechRecognizer` of ``checkpoint``, in eval mode on the CPU."""
    loaded = load_checkpoint(checkpoint, task="speech", arch=ARCH)
    module = SpeechRecognizer(**loaded["hparams"])
    load_weights(module, loaded, checkpoint)
    return module.eval()


def build_datamodule(hparams: dict[str, Any], data: Path | None) -> SpeechDataModule:
    """The data a checkpoint was trained on (``data`` overrides its corpus directory)."""
    settings = hparams.get("data")
    if not settings:
        raise InputError("speech model: its hparams record no training data to rebuild")
    mean, std = hparams.get("feature_mean"), hparams.get("feature_std")
    return SpeechDataModule(
        dataset=settings["dataset"],
        data_dir=data if data is not None else settings["data_dir"],
        features=FeatureConfig(**hparams["features"]),
        batch_size=settings["batch_size"],
        corpus_utterances=settings["corpus_utterances"],
        corpus_seed=settings["corpus_seed"],
        timit_test=settings["timit_test"],
        feature_mean=None if mean is None else np.asarray(mean, dtype=np.float32),
        feature_std=None if std is None else np.asarray(std, dtype=np.float32),
    )


SPEC = TaskSpec(
    name="speech",
    headline=lambda hp: ("per", False),
    load_module=load_module,
    build_datamodule=build_datamodule,
    evaluate=evaluate,
)
