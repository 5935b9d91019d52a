"""Acoustic features: log-mel filterbanks with deltas, mean/variance normalisation, stacking.

* Log-mel energies from :func:`librosa.feature.melspectrogram` (25 ms Hann window, 10 ms hop,
  power spectrum) with ``log(max(E, 1e-10))``, as in Kaldi's fbank.
* Δ and ΔΔ by :func:`librosa.feature.delta` (regression over ±2 frames, S. Furui, "Speaker-
  independent isolated word recognition using dynamic features of speech spectrum", IEEE
  Trans. ASSP 34(1), 1986). 51 mels + Δ + ΔΔ = 153 values per frame: ESE's input size.
* Normalisation to zero mean and unit variance per feature, either per utterance or with
  global statistics of the training set (stored with the model).
* Frame stacking and skipping as in H. Sak et al., "Fast and accurate recurrent neural network
  acoustic models for speech recognition", Interspeech 2015: frame t of the output is the
  concatenation of input frames t*skip .. t*skip+stack-1 (the last frame repeated past the end).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lstmforge.data.audio import SAMPLE_RATE
from lstmforge.errors import InputError

NORMALISATIONS = ("utterance", "global", "none")


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings (saved in the model's hparams so inference computes the same)."""

    n_mels: int = 40
    deltas: int = 2
    normalisation: str = "utterance"
    stack: int = 1
    skip: int = 1
    win_ms: float = 25.0
    hop_ms: float = 10.0

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise InputError(
                f"normalisation: expected one of {NORMALISATIONS}, got {self.normalisation!r}"
            )
        for name in ("n_mels", "stack", "skip"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.deltas not in (0, 1, 2):
            raise InputError(f"deltas: expected 0, 1 or 2, got {self.deltas}")

    @property
    def frame_size(self) -> int:
        """Values per frame before stacking: mels times (1 + number of deltas)."""
        return self.n_mels * (1 + self.deltas)

    @property
    def input_size(self) -> int:
        """Values per model input step (after stacking)."""
        return self.frame_size * self.stack

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for hparams)."""
        return asdict(self)


def log_mel_deltas(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """[frames, n_mels * (1 + deltas)] log-mel energies followed by their Δ (and ΔΔ)."""
    import librosa

    win = int(round(cfg.win_ms * SAMPLE_RATE / 1000))
    hop = int(round(cfg.hop_ms * SAMPLE_RATE / 1000))
    n_fft = int(2 ** np.ceil(np.log2(win)))
    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32),
        sr=SAMPLE_RATE,
        n_fft=n_fft,
        win_length=win,
        hop_length=hop,
        n_mels=cfg.n_mels,
        power=2.0,
        center=True,
    )
    logmel = np.log(np.maximum(mel, 1e-10))
    parts = [logmel]
    for order in range(1, cfg.deltas + 1):
        parts.append(librosa.feature.delta(logmel, width=5, order=order, axis=-1, mode="nearest"))
    return np.concatenate(parts, axis=0).T.astype(np.float32)


def normalise(
    features: np.ndarray, cfg: FeatureConfig, mean: np.ndarray | None, std: np.ndarray | None
) -> np.ndarray:
    """Zero mean, unit variance per feature: per utterance, or with the given global stats."""
    if cfg.normalisation == "none":
        return features
    if cfg.normalisation == "utterance":
        mean, std = features.mean(axis=0), features.std(axis=0)
    elif mean is None or std is None:
        raise InputError("global normalisation needs the training-set mean and std")
    return ((features - mean) / np.maximum(std, 1e-5)).astype(np.float32)


def stack_frames(features: np.ndarray, stack: int, skip: int) -> np.ndarray:
    """Concatenate ``stack`` consecutive frames and keep every ``skip``-th result."""
    if stack == 1 and skip == 1:
        return features
    frames = features.shape[0]
    index = np.arange(0, frames, skip)[:, None] + np.arange(stack)[None, :]
    stacked = features[np.minimum(index, frames - 1)]  # [frames/skip, stack, F]
    return stacked.reshape(stacked.shape[0], -1)


def extract_features(
    audio: np.ndarray,
    cfg: FeatureConfig,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> np.ndarray:
    """The model input of one utterance: [steps, cfg.input_size] float32."""
    return stack_frames(normalise(log_mel_deltas(audio, cfg), cfg, mean, std), cfg.stack, cfg.skip)
