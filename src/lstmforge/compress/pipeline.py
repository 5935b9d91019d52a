"""Compress a task checkpoint end to end: load, (retrain), calibrate, compress, evaluate.

What ``lstmforge compress`` runs. The task is read from the checkpoint's ``hparams["task"]``
and reached through :func:`lstmforge.tasks.get_task`, so every task works the same way. The
metric table compares the dense float model, the pruned float model (the artifact's sparsity
pattern on float weights), the same float weights pruned one shot in the other pruning mode
(plain magnitude when the artifact is load-balanced, and vice versa; ESE §3 compares the two at
equal density) and the pruned + quantized integer engine, all through the task's own
``evaluate``. The other mode costs one mask computation and one float evaluation, no
retraining: after a prune-retrain schedule it prunes the retrained weights.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lstmforge.compress.artifact import CompressedModel
from lstmforge.compress.compressor import compress_model
from lstmforge.compress.pruning import check_density, matrix_keys
from lstmforge.compress.retrain import matrix_parameters, prune_retrain
from lstmforge.compress.sensitivity import allocate_densities, measure_sensitivity
from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.errors import InputError
from lstmforge.training import load_checkpoint, save_checkpoint


def evaluations(balanced: bool) -> list[str]:
    """The models scored, in order; ``pruned_float_<mode>`` is the other pruning mode."""
    other = "unbalanced" if balanced else "balanced"
    return ["dense_float", "pruned_float", f"pruned_float_{other}", "pruned_integer"]


def stage_names(
    *, retrain: bool, evaluate: bool, balanced: bool, sensitivity: bool = False
) -> list[str]:
    """The stages ``on_stage`` is called with, in order."""
    names = ["load", *(["sensitivity"] if sensitivity else []), *(["retrain"] if retrain else [])]
    names.append("compress")
    if evaluate:
        names += [f"evaluate {name}" for name in evaluations(balanced)]
    return names


def retrained_path(out: Path) -> Path:
    """Where a run with retraining writes its fine-tuned float model: ``X-retrained.ckpt``
    next to ``X.lfz``. Its layers outside the artifact are the ones the artifact runs with
    (``<task> evaluate --checkpoint X-retrained.ckpt --artifact X.lfz``); on its own it is the
    pruned float model (fake-quantized too after ``--qat``). A run without retraining removes
    the ``X-retrained.ckpt`` of the artifact it replaces."""
    out = Path(out)
    return out.with_name(f"{out.stem}-retrained.ckpt")


def calibration_runner(datamodule: Any, batches: int):
    """A callable that runs a module's ``validation_step`` on the first training batches.

    A datamodule whose training batches are augmented offers ``calibration_dataloader()``,
    the same data as recorded; its batches are used then.
    """

    def calibrate(module: torch.nn.Module) -> None:
        loader = getattr(datamodule, "calibration_dataloader", datamodule.train_dataloader)()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*self.log.*")
            for index, batch in enumerate(loader):
                if index >= batches:
                    break
                module.validation_step(batch, index)

    return calibrate


def validation_loss(datamodule: Any) -> Callable[[torch.nn.Module], float]:
    """A score for :func:`~lstmforge.compress.sensitivity.measure_sensitivity`: the task's
    ``val_loss`` over its validation split (every task logs it), lower is better."""
    import lightning as L

    def score(module: torch.nn.Module) -> float:
        lightning_log = logging.getLogger("lightning.pytorch")
        level = lightning_log.level
        lightning_log.setLevel(logging.WARNING)  # no device banner for every probe
        try:
            trainer = L.Trainer(
                accelerator="auto",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Lightning's advice on workers and logging
                (result,) = trainer.validate(module, datamodule=datamodule, verbose=False)
        finally:
            lightning_log.setLevel(level)
            module.trainer = None  # detached: later stages call its steps outside a Trainer
        return float(result["val_loss"])

    return score


def check_density_options(
    density: float, overrides: dict[str, float] | None, sensitivity_probe: float | None
) -> None:
    """Reject impossible density options before anything is loaded."""
    check_density(density)
    if overrides and sensitivity_probe is not None:
        raise InputError("--matrix-density and --sensitivity exclude each other")
    if sensitivity_probe is not None:
        check_density(sensitivity_probe, "--sensitivity")
    for key, value in (overrides or {}).items():
        check_density(value, f"--matrix-density {key}")


def resolve_densities(
    module: torch.nn.Module,
    density: float,
    *,
    overrides: dict[str, float] | None = None,
    sensitivity_probe: float | None = None,
    score: Callable[[torch.nn.Module], float] | None = None,
    num_pes: int = 1,
    balanced: bool = True,
) -> tuple[float | dict[str, float], dict[str, float] | None]:
    """The density of every matrix, and the measured sensitivities (None unless measured).

    ``density`` for all; with ``overrides`` (``"block:param"`` or ``"param"`` keys) those
    matrices get theirs; with ``sensitivity_probe`` the overall ``density`` is shared out by
    each matrix's measured sensitivity (one matrix pruned to the probe density at a time, the
    increase of ``score``, lower is better; Han et al. 2015, §3). The options are those
    :func:`check_density_options` has passed."""
    matrices = {
        f"{block}:{name}": (block, owner, name) for block, owner, name in matrix_parameters(module)
    }
    if sensitivity_probe is not None:
        if score is None:
            raise InputError("sensitivity: a score function is needed")
        sizes = {key: getattr(owner, name).numel() for key, (_, owner, name) in matrices.items()}
        measured = measure_sensitivity(
            module, score, probe_density=sensitivity_probe, num_pes=num_pes, balanced=balanced
        )
        floor = min(sensitivity_probe, density)  # nothing was measured below the probe
        return allocate_densities(sizes, density, measured, floor), measured
    if not overrides:
        return density, None
    known = {key for block, _, name in matrices.values() for key in matrix_keys(block, name)}
    unknown = [key for key in overrides if key not in known]
    if unknown:
        raise InputError(
            f"--matrix-density: no matrix {', '.join(map(repr, unknown))}; the model's matrices: "
            f"{', '.join(matrices)}"
        )
    return {  # the most specific key wins: BLOCK:PARAM over PARAM (every matrix so named)
        key: next((overrides[k] for k in matrix_keys(block, name) if k in overrides), density)
        for key, (block, _, name) in matrices.items()
    }, None


@dataclass
class CompressionRun:
    """What :func:`compress_checkpoint` produced."""

    task: str
    artifact: CompressedModel
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: tuple[str, bool] | None = None
    saturation: dict[str, int] = field(default_factory=dict)
    retrain: list[dict[str, Any]] = field(default_factory=list)
    retrained_checkpoint: Path | None = None
    densities: float | dict[str, float] | None = None
    sensitivity: dict[str, float] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def compress_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    density: float,
    num_pes: int,
    matrix_density: dict[str, float] | None = None,
    sensitivity_probe: float | None = None,
    weight_bits: int = 12,
    balanced: bool = True,
    retrain_epochs: int = 0,
    prune_steps: int = 3,
    retrain_fraction: float = 1.0,
    qat: bool = False,
    calibration_batches: int = 8,
    data: Path | None = None,
    activation: ActivationConfig | None = None,
    cell_guard_bits: int = 0,
    evaluate: bool = True,
    seed: int = 0,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> CompressionRun:
    """Compress ``checkpoint`` into ``out`` (``.lfz``) and score it (module docstring).

    ``density`` is the overall target; ``matrix_density`` overrides it per matrix and
    ``sensitivity_probe`` shares it out by measured sensitivity (:func:`resolve_densities`).
    ``on_stage(name)`` is called as each stage starts (for progress display), with the names of
    :func:`stage_names`. ``cell_guard_bits`` as in :func:`~lstmforge.compress.compress_model`.
    """
    stage = on_stage or (lambda name: None)
    from lstmforge.engine import saturation_counts, substitute
    from lstmforge.tasks import get_task

    check_density_options(density, matrix_density, sensitivity_probe)
    retrained = retrained_path(out)
    retrained_is_input = retrained.resolve() == Path(checkpoint).resolve()
    if retrain_epochs > 0 and retrained_is_input:
        raise InputError(
            f"{checkpoint}: retraining would write the fine-tuned model over this input "
            f"checkpoint ({retrained.name} belongs to --out {Path(out).name}); choose another --out"
        )
    stage("load")
    task = load_checkpoint(checkpoint)["hparams"]["task"]
    spec = get_task(task)
    module = spec.load_module(checkpoint)
    hparams = dict(module.hparams)
    datamodule = spec.build_datamodule(hparams, data)
    datamodule.setup("fit")
    dense = copy.deepcopy(module).eval()
    result = CompressionRun(task=task, artifact=None, headline=spec.headline(hparams))  # type: ignore[arg-type]
    start = time.perf_counter()
    if sensitivity_probe is not None:
        stage("sensitivity")
    densities, result.sensitivity = resolve_densities(
        module,
        density,
        overrides=matrix_density,
        sensitivity_probe=sensitivity_probe,
        score=validation_loss(datamodule),
        num_pes=num_pes,
        balanced=balanced,
    )
    result.densities = densities
    if sensitivity_probe is not None:
        result.seconds["sensitivity"] = time.perf_counter() - start
    start = time.perf_counter()
    if retrain_epochs > 0:
        stage("retrain")
        steps = prune_retrain(
            module,
            datamodule,
            density=densities,
            num_pes=num_pes,
            balanced=balanced,
            steps=prune_steps,
            epochs_per_step=retrain_epochs,
            out_dir=Path(out).with_suffix("").with_name(Path(out).stem + "-retrain"),
            qat_bits=weight_bits if qat else None,
            seed=seed,
            progress=progress,
            limit_train_batches=retrain_fraction,
        )
        result.retrain = [vars(s) for s in steps]
    result.seconds["retrain"] = time.perf_counter() - start
    start = time.perf_counter()
    stage("compress")
    cm = compress_model(
        module,
        density=densities,
        num_pes=num_pes,
        weight_bits=weight_bits,
        balanced=balanced,
        calibration=calibration_runner(datamodule, calibration_batches),
        activation=activation,
        cell_guard_bits=cell_guard_bits,
    )
    cm.settings["checkpoint"] = str(checkpoint)
    if retrain_epochs > 0:  # the float model the artifact belongs to (its layers outside it)
        result.retrained_checkpoint = save_checkpoint(module, retrained.resolve())
        cm.settings["retrained_checkpoint"] = str(result.retrained_checkpoint)
    cm.settings["retrain_epochs_per_step"] = retrain_epochs
    cm.settings["retrain_fraction"] = retrain_fraction
    cm.settings["prune_steps"] = prune_steps if retrain_epochs else 0
    cm.settings["qat"] = qat
    cm.save(out)
    if retrain_epochs == 0 and not retrained_is_input:
        retrained.unlink(missing_ok=True)  # the retrained model of the artifact just replaced
    result.artifact = cm
    result.seconds["compress"] = time.perf_counter() - start
    if evaluate:
        datamodule.setup("test")
        other = compress_model(  # float-sparse reads only the masks: no calibration needed
            module,
            density=densities,
            num_pes=num_pes,
            weight_bits=weight_bits,
            balanced=not balanced,
        )
        models = (
            dense,
            substitute(module, cm, mode="float-sparse"),
            substitute(module, other, mode="float-sparse"),
            substitute(module, cm, mode="integer"),
        )
        for name, model in zip(evaluations(balanced), models, strict=True):
            start = time.perf_counter()
            stage(f"evaluate {name}")
            with torch.no_grad():
                result.metrics[name] = spec.evaluate(model, datamodule)
            result.seconds[f"evaluate_{name}"] = time.perf_counter() - start
            if name == "pruned_integer":
                result.saturation = saturation_counts(model)
    return result
