"""From a data source to normalised envelope frames with targets and split labels.

:class:`EMGDataConfig` says which data (synthetic, NinaPro DB2, NinaPro DB8), which subjects,
how to split it and how to preprocess it; it round-trips through plain dicts so a checkpoint's
hparams can rebuild exactly the data it was trained on. :func:`build_features` runs the
(causal) preprocessing over each continuous recording and fits one input and one target
:class:`~lstmforge.data.emg_preprocessing.Standardiser` per subject on that subject's training
frames only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstmforge.data.emg_preprocessing import (
    PreprocessConfig,
    Standardiser,
    emg_envelope,
    frame_labels,
    frame_targets,
    long_exposure_images,
    window_ends,
)
from lstmforge.data.emg_recording import EMGRecording
from lstmforge.data.emg_splits import (
    HOLD_OUTS,
    TEST,
    TRAIN,
    VAL,
    RepetitionSplit,
    fill_rest,
    require_splits,
    split_by_repetition,
    split_sessions,
)
from lstmforge.data.emg_synthetic import SyntheticEMGConfig, generate_subject
from lstmforge.data.ninapro import (
    DB2_GLOVE_COLUMNS,
    DB8_STRUCTURAL_DOA_MAP,
    find_subjects,
    load_db2,
    load_db8,
)
from lstmforge.errors import InputError

DATASETS = ("synthetic", "ninapro-db2", "ninapro-db8")


@dataclass(frozen=True)
class EMGDataConfig:
    """Which data, which subjects, which split, which preprocessing."""

    dataset: str = "synthetic"
    subjects: tuple[int, ...] | None = None
    synthetic: SyntheticEMGConfig = field(default_factory=SyntheticEMGConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    split: RepetitionSplit = field(default_factory=RepetitionSplit)
    hold_out: str = "repetitions"
    db2_exercises: tuple[int, ...] = (1,)
    glove_columns: tuple[int, ...] = DB2_GLOVE_COLUMNS
    doa_map: tuple[tuple[float, ...], ...] = tuple(map(tuple, DB8_STRUCTURAL_DOA_MAP.tolist()))

    def validate(self) -> None:
        """Reject unknown data sets and impossible subject lists, naming the field."""
        if self.dataset not in DATASETS:
            raise InputError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.subjects is not None:
            if not self.subjects or len(set(self.subjects)) != len(self.subjects):
                raise InputError(
                    f"subjects: expected distinct subject numbers, got {self.subjects}"
                )
            largest = self.synthetic.n_subjects if self.dataset == "synthetic" else None
            bad = [s for s in self.subjects if s < 1 or (largest is not None and s > largest)]
            if bad:
                where = f"1..{largest}" if largest is not None else ">= 1"
                raise InputError(f"subjects: expected numbers in {where}, got {bad}")
        self.synthetic.validate()
        self.split.validate()
        if self.hold_out not in HOLD_OUTS:
            raise InputError(
                f"hold_out must be one of {', '.join(HOLD_OUTS)}, got {self.hold_out!r}"
            )
        if self.hold_out != "repetitions" and self.dataset != "synthetic":
            raise InputError(
                f"hold_out {self.hold_out!r} needs the synthetic data, not {self.dataset}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for hparams / JSON."""
        values = asdict(self)
        values["preprocess"] = self.preprocess.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EMGDataConfig:
        """Inverse of :meth:`to_dict` (lists become tuples)."""
        v = dict(values)
        synthetic = dict(v["synthetic"]) | {"movements": tuple(v["synthetic"]["movements"])}
        split = {k: tuple(reps) for k, reps in v["split"].items()}
        return cls(
            dataset=v["dataset"],
            subjects=None if v["subjects"] is None else tuple(v["subjects"]),
            synthetic=SyntheticEMGConfig(**synthetic),
            preprocess=PreprocessConfig.from_dict(v["preprocess"]),
            split=RepetitionSplit(**split),
            hold_out=v.get("hold_out", "repetitions"),
            db2_exercises=tuple(v["db2_exercises"]),
            glove_columns=tuple(v["glove_columns"]),
            doa_map=tuple(tuple(row) for row in v["doa_map"]),
        )


@dataclass
class FeatureRecording:
    """One continuous recording after preprocessing.

    ``frames`` [F, C] normalised envelope, ``targets`` [F, J] normalised kinematics,
    ``split`` [F] split code per frame; ``raw`` is the recording it came from.
    """

    frames: np.ndarray
    targets: np.ndarray
    split: np.ndarray
    raw: EMGRecording


@dataclass
class SubjectFeatures:
    """All recordings of one subject with the normalisers fitted on its training frames."""

    subject: int
    recordings: list[FeatureRecording]
    input_norm: Standardiser
    target_norm: Standardiser

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Names of the regressed joints / degrees of actuation."""
        return self.recordings[0].raw.joint_names


def _labelled_recordings(
    cfg: EMGDataConfig, data_dir: Path | None, subject: int
) -> list[tuple[EMGRecording, np.ndarray]]:
    """The subject's recordings with a split code per sample (protocols in ``emg_splits``)."""
    if cfg.dataset == "synthetic":
        recordings = generate_subject(cfg.synthetic, subject)
        codes = split_sessions([r.repetition for r in recordings], cfg.split, cfg.hold_out)
        return list(zip(recordings, codes, strict=True))
    if data_dir is None:
        raise InputError(f"--data DIR is required for dataset {cfg.dataset!r}")
    if cfg.dataset == "ninapro-db2":
        recordings = load_db2(data_dir, subject, cfg.db2_exercises, cfg.glove_columns)
        return [(r, split_by_repetition(r.repetition, cfg.split)) for r in recordings]
    a1, a2, a3 = load_db8(data_dir, subject, np.asarray(cfg.doa_map))
    if not np.any(a2.repetition > 0):
        raise InputError(
            f"{data_dir}: subject {subject} acquisition 2 has no repetition labels "
            "('rerepetition' all 0); its last repetition is the validation set"
        )
    filled = fill_rest(a2.repetition)
    a2_split = np.where(filled == filled.max(), VAL, TRAIN).astype(np.int8)
    return [
        (a1, np.full(a1.n_samples, TRAIN, dtype=np.int8)),
        (a2, a2_split),
        (a3, np.full(a3.n_samples, TEST, dtype=np.int8)),
    ]


def subject_list(cfg: EMGDataConfig, data_dir: Path | None) -> list[int]:
    """The subjects to use: ``cfg.subjects`` or every subject the source has."""
    if cfg.subjects is not None:
        return list(cfg.subjects)
    if cfg.dataset == "synthetic":
        return list(range(1, cfg.synthetic.n_subjects + 1))
    if data_dir is None:
        raise InputError(f"--data DIR is required for dataset {cfg.dataset!r}")
    return find_subjects(data_dir, "db2" if cfg.dataset == "ninapro-db2" else "db8")


def subject_features(cfg: EMGDataConfig, data_dir: Path | None, subject: int) -> SubjectFeatures:
    """Preprocess one subject; normalisers are fitted on its training frames only."""
    pre = cfg.preprocess
    labelled = _labelled_recordings(cfg, data_dir, subject)
    source = labelled[0][0].source
    require_splits([codes for _, codes in labelled], source, (TRAIN, TEST))
    envelopes, targets, splits = [], [], []
    for recording, codes in labelled:
        frame = pre.frame_length(recording.fs)
        envelopes.append(emg_envelope(recording.emg, recording.fs, pre))
        targets.append(frame_targets(recording.kinematics, frame))
        splits.append(frame_labels(codes, frame))
        if envelopes[-1].shape[0] < pre.window:
            raise InputError(
                f"{recording.source}: {envelopes[-1].shape[0]} envelope frames, shorter than "
                f"one window of {pre.window}"
            )
    train_env = np.concatenate([e[s == TRAIN] for e, s in zip(envelopes, splits, strict=True)])
    train_tgt = np.concatenate([t[s == TRAIN] for t, s in zip(targets, splits, strict=True)])
    input_norm = Standardiser.fit(train_env, f"{source} (emg)")
    target_norm = Standardiser.fit(train_tgt, f"{source} (kinematics)")
    recordings = [
        FeatureRecording(
            frames=input_norm.transform(e), targets=target_norm.transform(t), split=s, raw=r
        )
        for e, t, s, (r, _) in zip(envelopes, targets, splits, labelled, strict=True)
    ]
    return SubjectFeatures(subject, recordings, input_norm, target_norm)


def build_features(cfg: EMGDataConfig, data_dir: Path | None = None) -> list[SubjectFeatures]:
    """Features of every selected subject; all must have the same channels and joints."""
    cfg.validate()
    subjects = [subject_features(cfg, data_dir, s) for s in subject_list(cfg, data_dir)]
    shapes = {(s.recordings[0].frames.shape[1], s.recordings[0].targets.shape[1]) for s in subjects}
    if len(shapes) != 1:
        raise InputError(f"subjects differ in EMG channels / joints: {sorted(shapes)}")
    return subjects


def window_arrays(
    recording: FeatureRecording, window: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows of a recording: images [K, C, W], targets [K, J], split codes [K]."""
    ends = window_ends(recording.frames.shape[0], window, step)
    images = long_exposure_images(recording.frames, window, step)
    return images, recording.targets[ends], recording.split[ends]
