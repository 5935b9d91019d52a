"""Evaluate a nowcasting model (and the baselines) on the test split.

Radar: the [0, 1] reflectivity is turned into rain rate (Z-R relation of the data) and scored
with :class:`lstmforge.metrics.nowcasting.NowcastScores` (CSI/POD/FAR at 0.5-30 mm/h, FSS,
rainfall MSE, correlation). Moving MNIST: :class:`lstmforge.metrics.image.FrameScores`
(per-sequence cross-entropy, per-frame MSE/MAE, SSIM, PSNR). Both overall and per lead time.

The model is only called through its ``forward`` (``forecast``), so a module whose recurrent
cores were replaced by engine-backed ones (:func:`lstmforge.engine.substitute`) is evaluated the
same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lstmforge.data.units import unit_to_rainrate
from lstmforge.errors import InputError
from lstmforge.metrics.image import FrameScores
from lstmforge.metrics.nowcasting import NowcastScores
from lstmforge.tasks.nowcast.baselines import BASELINES
from lstmforge.tasks.nowcast.data import NowcastDataModule
from lstmforge.tasks.nowcast.module import NowcastModule


@dataclass
class Examples:
    """The first test sequences with every method's forecast, [N, T, H, W] on [0, 1]."""

    past: list[np.ndarray] = field(default_factory=list)
    future: list[np.ndarray] = field(default_factory=list)
    forecasts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, past: np.ndarray, future: np.ndarray, forecasts: dict[str, np.ndarray]) -> None:
        self.past.append(past)
        self.future.append(future)
        for name, value in forecasts.items():
            self.forecasts.setdefault(name, []).append(value)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """``(past, future, {method: forecast})`` stacked."""
        stack = np.concatenate
        return (
            stack(self.past),
            stack(self.future),
            {k: stack(v) for k, v in self.forecasts.items()},
        )


def _scorer(dataset: str, zr: tuple[float, float]) -> tuple[Callable[[], Any], Callable]:
    """A new-accumulator factory and the update adapter for ``dataset``."""
    if dataset == "radar":

        def update(scores: NowcastScores, pred: np.ndarray, true: np.ndarray) -> None:
            scores.update(unit_to_rainrate(pred, *zr), unit_to_rainrate(true, *zr))

        return NowcastScores, update

    def update_frames(scores: FrameScores, pred: np.ndarray, true: np.ndarray) -> None:
        scores.update(torch.from_numpy(pred), torch.from_numpy(true))

    return FrameScores, update_frames


def evaluation_device(accelerator: str, integer_engine: bool = False) -> torch.device:
    """The device to evaluate on for ``accelerator`` (``cpu``, ``gpu``/``cuda`` or ``auto``: a
    CUDA GPU when there is one). The integer engine (a substituted ``.lfz``) runs on the CPU."""
    if accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise InputError(f"--accelerator: expected auto, cpu or gpu, got {accelerator!r}")
    accelerator = "gpu" if accelerator == "cuda" else accelerator
    if accelerator == "gpu" and integer_engine:
        raise InputError("--accelerator gpu: the integer engine (--artifact) runs on the CPU")
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise InputError("--accelerator gpu was requested but no CUDA device is available")
    use_gpu = accelerator == "gpu" or (
        accelerator == "auto" and not integer_engine and torch.cuda.is_available()
    )
    return torch.device("cuda" if use_gpu else "cpu")


def evaluate_all(
    module: NowcastModule,
    datamodule: NowcastDataModule,
    baselines: bool = False,
    num_examples: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, dict], Examples]:
    """Scores of the model (and, with ``baselines``, persistence and optical flow).

    Returns ``({"model": scores, "persistence": ..., "optical_flow": ...}, examples)``, each
    scores dict holding overall values and ``per_lead`` lists. ``on_batch(done, total)`` is
    called after each batch (progress bars).
    """
    module.eval()
    device = next(itertools.chain(module.parameters(), module.buffers()), torch.empty(0)).device
    loader = datamodule.test_dataloader()  # loads the data, and with it its Z-R constants
    dataset = module.hparams.data_config["dataset"]
    new_scores, update = _scorer(dataset, datamodule.zr)
    methods = ["model", *(BASELINES if baselines else [])]
    scores = {name: new_scores() for name in methods}
    examples = Examples()
    for done, (past, future) in enumerate(loader, start=1):
        steps = future.shape[1]
        with torch.no_grad():
            pred = module.forecast(past.to(device), steps).float().cpu()
        forecasts = {"model": pred[:, :, 0].numpy()}
        past_np, true_np = past[:, :, 0].numpy(), future[:, :, 0].numpy()
        for name in methods[1:]:
            forecasts[name] = BASELINES[name](past_np, steps)
        for name, forecast in forecasts.items():
            update(scores[name], forecast, true_np)
        kept = sum(len(p) for p in examples.past)
        if kept < num_examples:
            take = slice(0, num_examples - kept)
            examples.add(past_np[take], true_np[take], {k: v[take] for k, v in forecasts.items()})
        if on_batch is not None:
            on_batch(done, len(loader))
    return {name: s.result() for name, s in scores.items()}, examples


def evaluate(module: NowcastModule, datamodule: NowcastDataModule) -> dict[str, float]:
    """The model's overall test scores as ``{name: float}`` (the TaskSpec contract)."""
    results, _ = evaluate_all(module, datamodule)
    return {k: v for k, v in results["model"].items() if k != "per_lead"}
