"""One continuous sEMG recording with its kinematics and protocol labels.

The common in-memory form of every EMG source (the synthetic generator and the NinaPro
loaders): EMG ``[N, C]``, joint angles ``[N, J]`` on the same clock, the movement label
(``stimulus``/``restimulus`` in NinaPro, 0 = rest) and the repetition label
(``repetition``/``rerepetition``, 0 = rest), the sampling rate, and the name of the file or
generator it came from (used in every error message).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.errors import InputError


@dataclass(frozen=True)
class EMGRecording:
    """A continuous recording: ``emg`` [N, C], ``kinematics`` [N, J], labels [N], ``fs`` in Hz."""

    emg: np.ndarray
    kinematics: np.ndarray
    stimulus: np.ndarray
    repetition: np.ndarray
    fs: float
    joint_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        n = self.emg.shape[0]
        checks = {
            "emg": (self.emg, 2),
            "kinematics": (self.kinematics, 2),
            "stimulus": (self.stimulus, 1),
            "repetition": (self.repetition, 1),
        }
        for field, (array, ndim) in checks.items():
            if array.ndim != ndim:
                raise InputError(f"{self.source}: {field} must be {ndim}-D, got {array.shape}")
            if array.shape[0] != n:
                raise InputError(
                    f"{self.source}: {field} has {array.shape[0]} samples but emg has {n}"
                )
            if not np.all(np.isfinite(array)):
                raise InputError(f"{self.source}: {field} contains NaN or infinite values")
        if len(self.joint_names) != self.kinematics.shape[1]:
            raise InputError(
                f"{self.source}: {len(self.joint_names)} joint names for "
                f"{self.kinematics.shape[1]} kinematic columns"
            )
        if not self.fs > 0:
            raise InputError(f"{self.source}: sampling rate must be positive, got {self.fs}")

    @property
    def n_channels(self) -> int:
        """Number of EMG electrodes."""
        return int(self.emg.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.emg.shape[0])
