"""sEMG preprocessing as done in the field, all of it causal so that streaming equals offline.

1. Band-pass (Butterworth, default 20-450 Hz, 4th order) and a power-line notch (IIR notch,
   default 50 Hz, Q = 30), combined into one second-order-section cascade and run with
   ``scipy.signal.sosfilt`` — causal, with its state carried from chunk to chunk when
   streaming (:class:`CausalFilter`). (De Luca et al., "Filtering the surface EMG signal",
   J. Biomech. 43, 2010, for the band.)
2. Envelope over non-overlapping frames of ``round(fs / envelope_rate)`` samples: RMS
   (root of the mean square; no rectification needed) or MAV (mean of the rectified signal).
   The envelope rate is therefore ``fs / frame`` (exactly ``envelope_rate`` when it divides
   ``fs``). Kinematics are sampled at the last sample of each frame, so a frame's target
   never looks ahead of its EMG.
3. Normalisation (:class:`Standardiser`): per-column mean and standard deviation fitted on
   training frames only and applied everywhere.
4. Windowing: the "long exposure" window of Guo et al. — ``window`` consecutive envelope
   frames of all channels (default 10 frames at 50 Hz = 200 ms), stepped by ``step`` frames
   (default 5 = 100 ms), arranged as a channels × time image
   [C, window]. A window's target is the kinematics at its last frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from lstmforge.errors import InputError


@dataclass(frozen=True)
class PreprocessConfig:
    """Filter, envelope and window settings; ``window``/``step`` count envelope frames."""

    band_hz: tuple[float, float] = (20.0, 450.0)
    band_order: int = 4
    notch_hz: float = 50.0
    notch_q: float = 30.0
    envelope: str = "rms"
    envelope_rate: float = 50.0
    window: int = 10
    step: int = 5

    def validate(self, fs: float) -> None:
        """Reject settings impossible at sampling rate ``fs``, naming the field."""
        low, high = self.band_hz
        if not 0 < low < high < fs / 2:
            raise InputError(
                f"band_hz must satisfy 0 < low < high < fs/2 = {fs / 2}, got {low, high}"
            )
        if self.notch_hz and not 0 < self.notch_hz < fs / 2:
            raise InputError(f"notch_hz must be 0 (off) or below fs/2 = {fs / 2}")
        if self.envelope not in ("rms", "mav"):
            raise InputError(f"envelope must be 'rms' or 'mav', got {self.envelope!r}")
        if not 0 < self.envelope_rate <= fs:
            raise InputError(f"envelope_rate must be in (0, fs], got {self.envelope_rate}")
        if self.window < 1 or self.step < 1:
            raise InputError(f"window and step must be >= 1, got {self.window}, {self.step}")

    def frame_length(self, fs: float) -> int:
        """Samples per envelope frame at sampling rate ``fs`` (settings checked first)."""
        self.validate(fs)
        return max(1, int(round(fs / self.envelope_rate)))

    def to_dict(self) -> dict[str, Any]:
        """Plain values for hparams/JSON."""
        return asdict(self) | {"band_hz": list(self.band_hz)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**(dict(values) | {"band_hz": tuple(values["band_hz"])}))


def design_filter(fs: float, cfg: PreprocessConfig) -> np.ndarray:
    """Second-order sections of band-pass followed by notch (step 1)."""
    cfg.validate(fs)
    sos = signal.butter(cfg.band_order, cfg.band_hz, btype="bandpass", fs=fs, output="sos")
    if cfg.notch_hz:
        b, a = signal.iirnotch(cfg.notch_hz, cfg.notch_q, fs=fs)
        sos = np.concatenate([sos, signal.tf2sos(b, a)])
    return sos


class CausalFilter:
    """``sosfilt`` over [N, C] chunks with the filter state carried between calls."""

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self.sos = sos
        self.state = np.zeros((sos.shape[0], 2, n_channels))

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        out, self.state = signal.sosfilt(self.sos, chunk, axis=0, zi=self.state)
        return out


def envelope(filtered: np.ndarray, frame: int, kind: str) -> np.ndarray:
    """Envelope [N // frame, C] of complete frames of ``filtered`` [N, C] (step 2)."""
    n_frames = filtered.shape[0] // frame
    frames = filtered[: n_frames * frame].reshape(n_frames, frame, -1)
    if kind == "rms":
        return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return np.mean(np.abs(frames), axis=1)


def frame_targets(kinematics: np.ndarray, frame: int) -> np.ndarray:
    """Kinematics at the last sample of each complete frame: [N // frame, J]."""
    n_frames = kinematics.shape[0] // frame
    return kinematics[frame - 1 : n_frames * frame : frame]


def frame_labels(labels: np.ndarray, frame: int) -> np.ndarray:
    """Per-sample labels at the last sample of each complete frame."""
    return frame_targets(labels[:, None], frame)[:, 0]


def emg_envelope(emg: np.ndarray, fs: float, cfg: PreprocessConfig) -> np.ndarray:
    """Filtered envelope [F, C] of a whole recording (steps 1-2), float32."""
    filtered = CausalFilter(design_filter(fs, cfg), emg.shape[1])(emg.astype(np.float64))
    return envelope(filtered, cfg.frame_length(fs), cfg.envelope).astype(np.float32)


@dataclass(frozen=True)
class Standardiser:
    """Per-column z-score ``(x - mean) / std`` with statistics from training data (step 3)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray, what: str) -> Standardiser:
        """Fit on ``rows`` [N, D]; ``what`` names the data in error messages."""
        if rows.ndim != 2 or rows.shape[0] < 2:
            raise InputError(f"{what}: need at least 2 training frames to fit a normaliser")
        std = rows.std(axis=0)
        return cls(mean=rows.mean(axis=0), std=np.where(std > 1e-12, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardise the last axis of ``x``."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return (z * self.std + self.mean).astype(np.float32)


def window_ends(n_frames: int, window: int, step: int) -> np.ndarray:
    """Index of the last frame of every window: ``window - 1 + k * step`` (step 4)."""
    if n_frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(window - 1, n_frames, step, dtype=np.int64)


def long_exposure_images(frames: np.ndarray, window: int, step: int) -> np.ndarray:
    """Windows [K, C, window] of ``frames`` [F, C], ending at :func:`window_ends` (step 4)."""
    view = sliding_window_view(frames, window, axis=0)  # [F - window + 1, C, window]
    return view[::step]
