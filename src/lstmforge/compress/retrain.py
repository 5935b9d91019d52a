"""Gradual prune-retrain through the task's own training loop, with optional QAT.

Each step of the cubic schedule (:func:`~lstmforge.compress.pruning.gradual_densities`) prunes
every compressible matrix to the step's density (load-balance-aware or plain), then fine-tunes
with :func:`lstmforge.training.fit`. During fine-tuning the masks are enforced by a
parametrization (``torch.nn.utils.parametrize``): the forward pass always sees
``mask * weight``, so pruned weights stay pruned and get no gradient. With ``qat=True`` the
parametrization also fake-quantizes the weights to ``weight_bits`` with a straight-through
estimator (Bengio, Léonard, Courville, arXiv:1308.3432, 2013): the forward pass uses the
quantized value, the backward pass treats rounding as the identity.

References: Han, Pool, Tran, Dally, "Learning both weights and connections for efficient neural
networks", NeurIPS 2015 (prune-retrain); Zhu & Gupta 2017 (gradual schedule); ESE §3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from lstmforge.compress.artifact import block_layout
from lstmforge.compress.compressor import block_config, find_blocks
from lstmforge.compress.pruning import density_for, gradual_densities, prune_mask
from lstmforge.compress.quantization import weight_format


class MaskedWeight(nn.Module):
    """Parametrization ``w -> mask * w`` (and, with ``bits``, straight-through quantization)."""

    def __init__(self, mask: torch.Tensor, bits: int | None = None) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        kept = weight * self.mask
        if self.bits is None:
            return kept
        fmt = weight_format(kept.detach().cpu().double().numpy(), self.bits)
        scale = fmt.scale
        quantized = torch.clamp(torch.floor(kept / scale + 0.5), fmt.min_code, fmt.max_code) * scale
        return kept + (quantized - kept).detach()  # straight-through estimator


def matrix_parameters(module: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(block name, owner, parameter name)`` of every weight matrix that compression prunes;
    ``f"{block}:{name}"`` is the matrix's key in a per-matrix density dict."""
    return [
        (block, sub, name)
        for block, sub, kind in find_blocks(module)
        for name in block_layout(kind, block_config(sub, kind))
    ]


def scheduled_densities(
    density: float | dict[str, float], steps: int
) -> list[float | dict[str, float]]:
    """The gradual schedule of every step: for a per-matrix dict, each matrix follows its own
    cubic schedule to its own final density."""
    if not isinstance(density, dict):
        return list(gradual_densities(density, steps))
    per_matrix = {key: gradual_densities(d, steps) for key, d in density.items()}
    return [{key: s[n] for key, s in per_matrix.items()} for n in range(steps)]


def apply_masks(
    module: nn.Module,
    density: float | dict[str, float],
    num_pes: int,
    balanced: bool,
    bits: int | None,
    fill_gaps: bool = True,
) -> None:
    """Prune every matrix of ``module`` to ``density`` (one for all, or per matrix as
    :func:`~lstmforge.compress.pruning.density_for` reads it) and keep it pruned."""
    for block, owner, name in matrix_parameters(module):
        weight = getattr(owner, name).detach()
        flat = weight.reshape(weight.shape[0], -1).cpu().double().numpy()
        d = density_for(density, block, name)
        mask = prune_mask(flat, d, num_pes, balanced, fill_gaps).reshape(tuple(weight.shape))
        parametrize.register_parametrization(
            owner,
            name,
            MaskedWeight(torch.as_tensor(mask, dtype=weight.dtype, device=weight.device), bits),
        )


def bake_masks(module: nn.Module) -> None:
    """Remove the parametrizations, leaving the masked (and quantized) weights in place."""
    for _, owner, name in matrix_parameters(module):
        if parametrize.is_parametrized(owner, name):
            parametrize.remove_parametrizations(owner, name, leave_parametrized=True)


@dataclass
class RetrainStep:
    """One step of the schedule: its density (per matrix, if so given) and what fine-tuning
    produced."""

    density: float | dict[str, float]
    epochs_run: int
    seconds: float
    history: list[dict[str, float]]


def prune_retrain(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    *,
    density: float | dict[str, float],
    num_pes: int,
    balanced: bool = True,
    steps: int = 3,
    epochs_per_step: int = 1,
    out_dir: Path,
    qat_bits: int | None = None,
    seed: int = 0,
    **train_settings: Any,
) -> list[RetrainStep]:
    """Gradually prune ``module`` (in place) to ``density`` with fine-tuning after each step.

    ``density`` is one final density for every matrix or a per-matrix dict (``"block:param"``
    keys, as :func:`~lstmforge.compress.compress_model` takes); each matrix follows its own
    schedule (:func:`scheduled_densities`).

    ``qat_bits`` turns on quantization-aware fine-tuning at that weight width. Checkpoints and
    logs of step n go to ``out_dir / f"step{n}"``; ``train_settings`` are further
    :class:`~lstmforge.training.TrainConfig` fields (e.g. ``limit_train_batches``).
    """
    from lstmforge.training import TrainConfig, fit

    done = []
    for n, step_density in enumerate(scheduled_densities(density, steps)):
        apply_masks(module, step_density, num_pes, balanced, qat_bits)
        module.train()  # task loaders hand back modules in eval mode
        config = TrainConfig(
            out_dir=Path(out_dir) / f"step{n}",
            max_epochs=epochs_per_step,
            seed=seed,
            patience=None,
            restart=True,  # each call prunes afresh: an earlier call's steps are replaced
            **train_settings,
        )
        result = fit(module, datamodule, config)
        module.trainer = None  # detached again: later stages call its steps outside a Trainer
        bake_masks(module)
        done.append(RetrainStep(step_density, result.epochs_run, result.seconds, result.history))
    module.eval()
    return done


def kept_fraction(module: nn.Module) -> float:
    """Fraction of nonzero weights over every compressible matrix (for checks and reports)."""
    total = kept = 0
    for _, owner, name in matrix_parameters(module):
        weight = getattr(owner, name).detach()
        total += weight.numel()
        kept += int(torch.count_nonzero(weight))
    return kept / total if total else float(np.nan)
