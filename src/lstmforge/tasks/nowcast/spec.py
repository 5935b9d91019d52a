"""The nowcasting task as task-agnostic stages see it (:class:`lstmforge.tasks.TaskSpec`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lstmforge.errors import InputError
from lstmforge.tasks.interface import TaskSpec
from lstmforge.tasks.nowcast.data import NowcastData, NowcastDataModule
from lstmforge.tasks.nowcast.evaluate import evaluate
from lstmforge.tasks.nowcast.module import TASK, NowcastModule
from lstmforge.training.checkpoint import load_checkpoint, load_weights

MODULE_HPARAMS = ("arch", "data_config", "loss", "lr")


def headline(hparams: dict[str, Any]) -> tuple[str, bool]:
    """CSI at 0.5 mm/h (higher is better) for radar, cross-entropy (lower) for Moving MNIST."""
    if hparams["data_config"]["dataset"] == "radar":
        return ("csi_0.5", True)
    return ("cross_entropy", False)


def load_module(checkpoint: str | Path, arch: str | None = None) -> NowcastModule:
    """The :class:`NowcastModule` stored in ``checkpoint`` (task ``nowcast``; ``arch`` if
    given), in eval mode on CPU."""
    loaded = load_checkpoint(checkpoint, task=TASK, arch=arch)
    hparams = loaded["hparams"]
    missing = [k for k in MODULE_HPARAMS if k not in hparams]
    if missing:
        raise InputError(f"{checkpoint}: nowcast checkpoint lacks hyper-parameters {missing}")
    module = NowcastModule(
        **{k: hparams[k] for k in MODULE_HPARAMS}, peephole=hparams.get("peephole")
    )
    load_weights(module, loaded, checkpoint)
    return module.eval()


def build_datamodule(hparams: dict[str, Any], data: Path | None) -> NowcastDataModule:
    """The checkpoint's data, rebuilt from its hparams; ``data`` replaces the data path."""
    config = NowcastData(**hparams["data_config"])
    if data is not None:
        config = replace(config, data=str(data))
    return NowcastDataModule(config)


SPEC = TaskSpec(
    name=TASK,
    headline=headline,
    load_module=load_module,
    build_datamodule=build_datamodule,
    evaluate=evaluate,
)
