"""One training loop for every task, built on Lightning's ``Trainer``.

A task supplies a ``LightningModule`` (which logs ``val_loss`` on validation, and whose
``hparams`` include ``task``) and a ``LightningDataModule``; :func:`fit` adds the
project-wide behaviour:

* checkpoints in ``OUT/checkpoints``: ``last.ckpt`` after every epoch, ``best.ckpt`` by the
  monitored metric, and ``interrupted.ckpt`` when a run dies (Ctrl-C included);
* ``resume=True`` continues from the newest of ``last.ckpt`` / ``interrupted.ckpt``; without
  it, an ``OUT`` that already holds checkpoints is refused (``restart=True`` replaces them);
* early stopping on the monitored validation metric;
* ``OUT/logs`` with CSV and TensorBoard logs; ``OUT/history.json`` with one record of
  metrics per epoch, and ``OUT/train_config.json`` with the configuration and seed used;
* bf16 mixed precision on CUDA, fp32 on CPU; DDP over ``devices`` x ``num_nodes``
  (Lightning picks up ``torchrun``'s environment by itself).

References: Lightning ``Trainer``, ``ModelCheckpoint``, ``Callback.on_exception``,
``EarlyStopping`` (lightning.ai/docs/pytorch/stable).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    RichProgressBar,
    Timer,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning_utilities.core import rank_zero

from lstmforge.errors import InputError
from lstmforge.io import write_json
from lstmforge.training.checkpoint import load_checkpoint

LAST = "last.ckpt"
INTERRUPTED = "interrupted.ckpt"
BEST = "best.ckpt"


def _not_a_tip(record: logging.LogRecord) -> bool:
    """Lightning logs a "💡 Tip: try installing ..." line (a suggestion to install one of its
    cloud services) for every Trainer; it says nothing about the run, so :func:`fit` drops it
    from the logger Lightning's rank-zero messages go to when the Trainer is made."""
    return not record.getMessage().startswith("💡 Tip:")


@dataclass
class TrainConfig:
    """Everything about a training run that is not the model or the data.

    ``devices``/``num_nodes`` select data-parallel training; ``precision=None`` means bf16
    mixed precision on CUDA and fp32 elsewhere. ``patience=None`` disables early stopping; a
    resumed run uses the ``patience`` given now, not the saved one. ``resume`` continues the
    run saved in ``out_dir``; ``restart`` deletes its checkpoints and starts afresh (for
    callers that own ``out_dir``, like the demo); with neither, a ``out_dir`` holding
    checkpoints is refused.
    ``limit_train_batches``/``limit_val_batches`` (int: batches, float: fraction) are for
    smoke runs. ``max_minutes`` stops training after that much wall time of this call
    (a resumed run gets the full time again), keeping the checkpoints of the epochs that
    finished.
    """

    out_dir: Path
    max_epochs: int = 10
    max_minutes: float | None = None
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    precision: str | None = None
    resume: bool = False
    restart: bool = False
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    patience: int | None = 5
    gradient_clip_val: float | None = 1.0
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    log_every_n_steps: int = 10
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Reject impossible settings with a message naming the field."""
        if self.max_epochs < 1:
            raise InputError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.max_minutes is not None and not 0 < self.max_minutes < math.inf:
            raise InputError(f"max_minutes must be a finite number > 0, got {self.max_minutes}")
        if self.num_nodes < 1:
            raise InputError(f"num_nodes must be >= 1, got {self.num_nodes}")
        if isinstance(self.devices, int) and self.devices < 1:
            raise InputError(f"devices must be >= 1 (or 'auto'), got {self.devices}")
        if self.monitor_mode not in ("min", "max"):
            raise InputError(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.resume and self.restart:
            raise InputError("resume and restart exclude each other")
        if self.accelerator == "gpu" and not torch.cuda.is_available():
            raise InputError("accelerator 'gpu' was requested but no CUDA device is available")


@dataclass
class FitResult:
    """What a training run produced."""

    out_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, float]]
    epochs_run: int
    seconds: float
    interrupted: bool


class _History(Callback):
    """Record the logged metrics at the end of every training epoch (rank 0 only).

    Lightning validates before ``on_train_epoch_end``, so a record holds the epoch's training
    averages and its validation scores together.
    """

    def __init__(self, path: Path, initial: list[dict[str, float]]) -> None:
        self.path = path
        self.records = initial

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        record = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        for key, value in trainer.callback_metrics.items():
            record[key] = float(value)
        self.records = [r for r in self.records if r["epoch"] != record["epoch"]] + [record]
        write_json(self.path, {"epochs": self.records})


class _InterruptCheckpoint(Callback):
    """Save ``interrupted.ckpt`` when a run dies after training began (Ctrl-C, SIGTERM, an
    error). Unlike Lightning's ``OnExceptionCheckpoint``, its presence does not make
    ``Trainer.fit(ckpt_path=None)`` resume from whatever ``last.ckpt`` the directory holds,
    and a run that dies before its first step leaves no checkpoint behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start_step: int | None = None  # stays None when the fit loop has nothing to do

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step  # after a resumed checkpoint was restored

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error) -> None:
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # reached when fit ends normally: a last.ckpt saved by this run after it trained
        # supersedes an old interruption; a run that trained nothing keeps it
        trained = self.start_step is not None and trainer.global_step > self.start_step
        if trainer.is_global_zero and trained:
            self.path.unlink(missing_ok=True)


class _EarlyStopping(EarlyStopping):
    """Lightning's ``EarlyStopping`` that keeps the patience it was given when a checkpoint is
    restored (``EarlyStopping`` restores the saved one, so ``--resume --patience 10`` could
    not continue a run stopped with patience 1)."""

    @property
    def state_key(self) -> str:
        # Lightning keys callback state by class name: keep EarlyStopping's, so checkpoints
        # stay readable both ways
        return self._generate_state_key(monitor=self.monitor, mode=self.mode).replace(
            type(self).__qualname__, EarlyStopping.__qualname__, 1
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


class _CallTimer(Timer):
    """Lightning's ``Timer`` for a limit per call: a resumed run does not inherit the time
    the checkpointed run already spent (``Timer`` restores it, so resuming with the same
    limit would stop at once)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = 0


def _precision(cfg: TrainConfig) -> str:
    if cfg.precision is not None:
        return cfg.precision
    uses_cuda = cfg.accelerator in ("gpu", "cuda") or (
        cfg.accelerator == "auto" and torch.cuda.is_available()
    )
    return "bf16-mixed" if uses_cuda and torch.cuda.is_bf16_supported() else "32-true"


def resume_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest of ``last.ckpt`` and ``interrupted.ckpt`` in ``ckpt_dir``, if any."""
    candidates = [ckpt_dir / LAST, ckpt_dir / INTERRUPTED]
    existing = [p for p in candidates if p.is_file()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


def _comparable(value: Any) -> Any:
    """Hparam values as plain data where 2 == 2.0 and a tuple equals the same list."""
    if isinstance(value, dict):
        return {str(k): _comparable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def _differences(saved: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved, new)`` for every leaf that differs; nested dicts are descended
    into, so a changed ``data_config.num_train`` is named rather than the whole dict."""
    if isinstance(saved, dict) and isinstance(new, dict):
        found = []
        for key in sorted(saved.keys() | new.keys()):
            where = f"{path}.{key}" if path else key
            found += _differences(saved.get(key), new.get(key), where)
        return found
    return [] if _comparable(saved) == _comparable(new) else [(path, saved, new)]


def check_resume_hparams(ckpt_path: Path, module: L.LightningModule) -> None:
    """Refuse to resume a run whose model or data settings differ from the checkpoint's.

    A resumed run continues the saved one: its best score, early-stopping counter and
    optimiser state only make sense for the same task, architecture, loss and data. A
    setting the checkpoint predates (absent from its hparams) counts as its default in the
    module's constructor, so runs saved before a new option was added still resume.
    """
    new = dict(module.hparams)
    saved = load_checkpoint(ckpt_path, task=new.get("task"))["hparams"]
    defaults = {
        name: p.default
        for name, p in inspect.signature(type(module).__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    saved = {k: saved.get(k, defaults.get(k)) for k in saved.keys() | new.keys()}
    changed = _differences(saved, new)
    if changed:

        def shown(value: Any) -> str:
            return json.dumps(value, sort_keys=True, default=str)[:60]

        detail = "; ".join(f"{k}: saved {shown(a)}, now {shown(b)}" for k, a, b in changed)
        raise InputError(
            f"--resume: {ckpt_path} was trained with other settings ({detail}); "
            "resume with the same settings or train into a new --out"
        )


def _load_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["epochs"])
    except (ValueError, KeyError, TypeError):
        return []


def fit(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    cfg: TrainConfig,
) -> FitResult:
    """Train ``module`` on ``datamodule`` with the project-wide checkpointing and logging.

    Returns a :class:`FitResult`; the best checkpoint is ``OUT/checkpoints/best.ckpt``.
    Seed (``lightning.seed_everything(cfg.seed)``) before building ``module`` so its
    initialisation is reproducible too; ``fit`` seeds again for shuffling and dropout.
    """
    cfg.validate()
    out_dir = Path(cfg.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    existing = [name for name in (LAST, INTERRUPTED, BEST) if (ckpt_dir / name).is_file()]
    if existing and not cfg.resume:
        if not cfg.restart:
            raise InputError(
                f"{out_dir} already holds a training run ({', '.join(existing)} in "
                f"{ckpt_dir}): pass --resume to continue it, or train into a new --out"
            )
        for name in existing:
            (ckpt_dir / name).unlink(missing_ok=True)
    ckpt_path: Path | None = None
    if cfg.resume:
        ckpt_path = resume_checkpoint(ckpt_dir)
        if ckpt_path is None:
            raise InputError(f"--resume given but no checkpoint found in {ckpt_dir}")
        check_resume_hparams(ckpt_path, module)
    history_path = out_dir / "history.json"
    history = _History(history_path, _load_history(history_path) if cfg.resume else [])

    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=cfg.monitor,
        mode=cfg.monitor_mode,
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [
        best,
        _InterruptCheckpoint(ckpt_dir / INTERRUPTED),
        history,
    ]
    if cfg.patience is not None:
        callbacks.append(
            _EarlyStopping(monitor=cfg.monitor, mode=cfg.monitor_mode, patience=cfg.patience)
        )
    if cfg.max_minutes is not None:
        callbacks.append(_CallTimer(timedelta(minutes=cfg.max_minutes), verbose=False))
    if cfg.progress:
        callbacks.append(RichProgressBar(leave=True))

    # a new version_N per run, so resuming never overwrites the logs of the run before
    loggers = [
        CSVLogger(out_dir / "logs", name="csv"),
        TensorBoardLogger(out_dir / "logs", name="tensorboard", default_hp_metric=False),
    ]
    world = (cfg.devices if isinstance(cfg.devices, int) else 1) * cfg.num_nodes
    rank_zero.log.addFilter(_not_a_tip)  # the logger in use now (each Lightning package sets it)
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy="ddp" if world > 1 else "auto",
        precision=_precision(cfg),
        max_epochs=cfg.max_epochs,
        callbacks=callbacks,
        logger=loggers,
        gradient_clip_val=cfg.gradient_clip_val,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        deterministic=False,
    )
    if trainer.is_global_zero:
        config = dataclasses.asdict(cfg) | {"precision_used": _precision(cfg), "world_size": world}
        write_json(out_dir / "train_config.json", config)

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    seconds = time.perf_counter() - start
    interrupted = bool(trainer.interrupted)

    best_path = Path(best.best_model_path) if best.best_model_path else None
    last_path = ckpt_dir / LAST
    if best_path is not None and best_path.name != BEST and best_path.is_file():
        best_path = best_path.replace(ckpt_dir / BEST)
    return FitResult(
        out_dir=out_dir,
        best_checkpoint=best_path,
        last_checkpoint=last_path if last_path.is_file() else None,
        history=history.records,
        epochs_run=int(trainer.current_epoch),
        seconds=seconds,
        interrupted=interrupted,
    )
