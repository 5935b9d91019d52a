"""Train LE-ConvMN or the LSTM baseline through the shared loop and score the best checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L

from lstmforge.data.emg_augmentation import ArmbandAugmentation
from lstmforge.io import write_json
from lstmforge.tasks.emg.datamodule import EMGDataModule
from lstmforge.tasks.emg.dataset import EMGDataConfig
from lstmforge.tasks.emg.evaluate import metrics_report, predict_subject
from lstmforge.tasks.emg.module import EMGRegressor
from lstmforge.tasks.emg.networks import check_network_options
from lstmforge.training import FitResult, TrainConfig, fit


def train_emg(
    data_cfg: EMGDataConfig,
    data_dir: Path | None,
    train_cfg: TrainConfig,
    arch: str = "le-convmn",
    hidden: Sequence[int] | None = None,
    lr: float = 1e-3,
    chunk: int = 16,
    batch_size: int = 8,
    validation: str = "chunks",
    augmentation: ArmbandAugmentation | None = None,
    ring_channels: bool = False,
    peephole: str = "pixel",
    kernel_size: int = 3,
) -> tuple[FitResult, dict]:
    """Fit, then evaluate the best checkpoint on the test repetitions.

    ``ring_channels``, ``peephole``, ``kernel_size``: LE-ConvMN options
    (:func:`~lstmforge.tasks.emg.networks.build_network`).

    Returns the fit result and the metrics report (also written to ``OUT/test_metrics.json``).
    """
    augmentation = augmentation or ArmbandAugmentation()
    check_network_options(arch, ring_channels, peephole, kernel_size)
    datamodule = EMGDataModule(data_cfg, data_dir, chunk, batch_size, validation, augmentation)
    L.seed_everything(train_cfg.seed, verbose=False)
    module = EMGRegressor(
        n_channels=datamodule.n_channels,
        window=data_cfg.preprocess.window,
        n_outputs=datamodule.n_outputs,
        data=data_cfg.to_dict(),
        arch=arch,
        hidden=tuple(hidden) if hidden else None,
        lr=lr,
        chunk=chunk,
        batch_size=batch_size,
        validation=validation,
        augmentation=augmentation.to_dict(),
        ring_channels=ring_channels,
        peephole=peephole,
        kernel_size=kernel_size,
    )
    result = fit(module, datamodule, train_cfg)
    from lstmforge.tasks.emg.spec import load_module

    best = load_module(result.best_checkpoint or result.last_checkpoint)
    predictions = [predict_subject(best, s, data_cfg.preprocess) for s in datamodule.subjects]
    report = metrics_report(predictions) | {
        "arch": arch,
        "epochs_run": result.epochs_run,
        "train_seconds": result.seconds,
        "parameters": sum(p.numel() for p in best.parameters()),
    }
    write_json(Path(train_cfg.out_dir) / "test_metrics.json", report)
    return result, report
