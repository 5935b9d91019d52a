"""Train a named nowcasting model through the shared loop (:func:`lstmforge.training.fit`)."""

from __future__ import annotations

from dataclasses import replace

import lightning as L

from lstmforge.errors import InputError
from lstmforge.tasks.nowcast.data import NowcastData, NowcastDataModule
from lstmforge.tasks.nowcast.module import NowcastModule
from lstmforge.training import FitResult, TrainConfig, fit

DEFAULT_LOSS = {"moving-mnist": "bce", "radar": "balanced-mse"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes


def train(
    arch: str,
    data: NowcastData,
    cfg: TrainConfig,
    loss: str | None = None,
    lr: float = 1e-3,
    peephole: str | None = None,
    num_workers: int = 0,
    compile_mode: str | None = None,
) -> FitResult:
    """Seed, build the model and data for ``arch``/``data`` and train with ``cfg``.

    ``loss`` defaults to :data:`DEFAULT_LOSS`: the paper's cross-entropy for Moving MNIST,
    balanced MSE for radar. ``peephole`` replaces the configuration's peepholes (see
    :func:`~lstmforge.tasks.nowcast.configs.build_model`). ``num_workers`` data-loading
    processes build the batches (0: the main process). ``compile_mode`` (one of
    :data:`COMPILE_MODES`) compiles the network's forward with ``torch.compile`` in place
    (``nn.Module.compile``: the weights and checkpoints are unchanged).
    """
    if compile_mode is not None and compile_mode not in COMPILE_MODES:
        raise InputError(
            f"--compile: expected one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}"
        )
    L.seed_everything(cfg.seed, verbose=False)
    module = NowcastModule(
        arch, data.to_dict(), loss or DEFAULT_LOSS[data.dataset], lr, peephole=peephole
    )
    if compile_mode is not None:
        module.model.compile(mode=compile_mode)
    cfg = replace(cfg, extra=cfg.extra | {"num_workers": num_workers, "compile": compile_mode})
    datamodule = NowcastDataModule(data, num_workers)
    for split in ("train", "val"):  # read and check the data before the run directory is written
        datamodule.split(split)
    return fit(module, datamodule, cfg)
