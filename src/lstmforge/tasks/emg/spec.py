"""Registration of the ``emg`` task for task-agnostic stages (:mod:`lstmforge.tasks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstmforge.tasks.interface import TaskSpec


def load_module(checkpoint: Path):
    """The :class:`~lstmforge.tasks.emg.module.EMGRegressor` of a checkpoint, eval mode, CPU."""
    from lstmforge.tasks.emg.module import EMGRegressor
    from lstmforge.training.checkpoint import load_checkpoint, load_weights

    loaded = load_checkpoint(checkpoint, task="emg")
    module = EMGRegressor(**loaded["hparams"])
    load_weights(module, loaded, checkpoint)
    return module.eval()


def build_datamodule(hparams: dict[str, Any], data: Path | None):
    """The data a checkpoint was trained on, rebuilt from its hparams."""
    from lstmforge.data.emg_augmentation import ArmbandAugmentation
    from lstmforge.tasks.emg.datamodule import EMGDataModule
    from lstmforge.tasks.emg.dataset import EMGDataConfig

    return EMGDataModule(
        EMGDataConfig.from_dict(hparams["data"]),
        data,
        chunk=hparams["chunk"],
        batch_size=hparams["batch_size"],
        validation=hparams.get("validation", "chunks"),
        augmentation=ArmbandAugmentation(**(hparams.get("augmentation") or {})),
    )


def evaluate(module, datamodule) -> dict[str, float]:
    """Across-subject mean/std and per-subject metrics on the test repetitions."""
    from lstmforge.tasks.emg.evaluate import flat_metrics, metrics_report, predict_subject

    pre = datamodule.cfg.preprocess
    predictions = [predict_subject(module, s, pre) for s in datamodule.subjects]
    return flat_metrics(metrics_report(predictions))


SPEC = TaskSpec(
    name="emg",
    headline=lambda hp: ("cc", True),
    load_module=load_module,
    build_datamodule=build_datamodule,
    evaluate=evaluate,
)
