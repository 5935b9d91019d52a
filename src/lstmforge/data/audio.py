"""Reading and writing speech audio: WAV (RIFF) and NIST SPHERE, validated.

Reading goes through libsndfile (:mod:`soundfile`), which reads RIFF WAV and uncompressed NIST
SPHERE (TIMIT's ``.WAV`` files) alike. Every file is checked: it must exist, be readable audio,
be non-empty and hold finite samples; several channels are averaged to one.

Sample-rate policy: models work at :data:`SAMPLE_RATE` (16 kHz). Labelled corpora (TIMIT, the
synthetic corpus) **refuse** any other rate, because their label times are sample indices at
the corpus rate. Unlabelled audio given to ``speech transcribe`` is **resampled** to 16 kHz
with soxr's high-quality filter (:func:`librosa.resample`, ``res_type="soxr_hq"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from lstmforge.errors import InputError
from lstmforge.io import atomic_path

SAMPLE_RATE = 16000
"""Sample rate of every speech model and corpus, in Hz."""

FULL_SCALE_TOLERANCE = 4.0
"""Largest |sample| accepted: float WAVs may overshoot full scale a little, not by orders of
magnitude."""


def read_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, resample: bool = False
) -> np.ndarray:
    """Read ``path`` as mono float32 in [-1, 1] at ``sample_rate``.

    A file at another rate is resampled when ``resample`` is true and refused
    (:class:`~lstmforge.errors.InputError`) otherwise; so is a float file whose samples go far
    past full scale (:data:`FULL_SCALE_TOLERANCE`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise InputError(f"{path}: not a readable WAV/SPHERE audio file ({err})") from None
    if audio.shape[0] == 0:
        raise InputError(f"{path}: audio file is empty (0 samples)")
    audio = audio.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise InputError(f"{path}: audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak > FULL_SCALE_TOLERANCE:  # integer formats cannot; a float file can hold anything
        raise InputError(
            f"{path}: samples reach {peak:.3g}, expected audio in [-1, 1] (a float WAV written "
            "without scaling?)"
        )
    if rate != sample_rate:
        if not resample:
            raise InputError(
                f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz "
                "(labelled corpora are not resampled: label times are sample indices)"
            )
        audio = librosa_resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def librosa_resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample with soxr's high-quality filter (via librosa)."""
    import librosa

    return librosa.resample(audio, orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float audio in [-1, 1] as 16-bit PCM RIFF WAV, atomically."""
    with atomic_path(path) as tmp:
        sf.write(
            tmp, np.asarray(audio, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV"
        )
    return Path(path)
