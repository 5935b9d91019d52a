"""Causal streaming: raw sEMG in, one joint-angle vector out per window, state carried.

The recording is fed as it would arrive from an amplifier: first one window's worth of raw
samples (``window × frame``), then ``step × frame`` new samples at a time. For every block the
stream filters the new samples (filter state carried), computes their envelope frames,
normalises them with the subject's training statistics, appends them to a ring buffer of the
last ``window`` frames, runs the model on that one image with the recurrent state carried,
de-normalises and conditions the output. The wall-clock time of each of those steps, from
the block's arrival to the output, is the per-window end-to-end latency. Up to floating-point
rounding the outputs equal the offline evaluation (:mod:`~lstmforge.tasks.emg.evaluate`), which
computes the same causal functions in larger batches; :func:`stream_recording` reports the
largest difference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from lstmforge.data.emg_preprocessing import (
    CausalFilter,
    PreprocessConfig,
    design_filter,
    envelope,
)
from lstmforge.tasks.emg.dataset import SubjectFeatures, window_arrays
from lstmforge.tasks.emg.evaluate import Predictor, predict_windows
from lstmforge.tasks.emg.postprocess import OutputConditioner


@dataclass
class StreamResult:
    """Per-window outputs [K, J] (data units), latencies [K] in seconds, and checks."""

    predictions: np.ndarray
    latency_s: np.ndarray
    window_period_s: float
    max_abs_diff_vs_offline: float

    def summary(self) -> dict[str, float]:
        """Latency statistics in milliseconds and the real-time margin."""
        ms = self.latency_s * 1e3
        return {
            "windows": int(ms.size),
            "latency_mean_ms": float(ms.mean()),
            "latency_p50_ms": float(np.percentile(ms, 50)),
            "latency_p95_ms": float(np.percentile(ms, 95)),
            "latency_max_ms": float(ms.max()),
            "window_period_ms": self.window_period_s * 1e3,
            "real_time_factor": float(ms.mean() / (self.window_period_s * 1e3)),
            "max_abs_diff_vs_offline": self.max_abs_diff_vs_offline,
        }


@torch.no_grad()
def stream_recording(
    model: Predictor,
    subject: SubjectFeatures,
    pre: PreprocessConfig,
    recording_index: int = 0,
    alpha: float = 1.0,
    deadband: float = 0.0,
) -> StreamResult:
    """Run ``model`` causally over one of the subject's recordings (module docstring)."""
    recording = subject.recordings[recording_index]
    raw = recording.raw
    frame = pre.frame_length(raw.fs)
    filt = CausalFilter(design_filter(raw.fs, pre), raw.n_channels)
    conditioner = OutputConditioner(alpha, deadband)
    buffer = np.zeros((0, raw.n_channels), dtype=np.float32)
    state = None
    outputs, latencies = [], []
    position, block = 0, pre.window * frame
    while position + block <= raw.n_samples:
        chunk = raw.emg[position : position + block]
        position += block
        start = time.perf_counter()
        frames = envelope(filt(chunk.astype(np.float64)), frame, pre.envelope).astype(np.float32)
        buffer = np.concatenate([buffer, subject.input_norm.transform(frames)])[-pre.window :]
        image = torch.from_numpy(np.ascontiguousarray(buffer.T))[None, None, None]
        y, state = model(image, state)
        outputs.append(conditioner.step(subject.target_norm.inverse(y[0, 0].float().numpy())))
        latencies.append(time.perf_counter() - start)
        block = pre.step * frame
    predictions = np.stack(outputs)
    images, _, _ = window_arrays(recording, pre.window, pre.step)
    offline = OutputConditioner(alpha, deadband).run(
        subject.target_norm.inverse(predict_windows(model, images))
    )
    return StreamResult(
        predictions=predictions,
        latency_s=np.asarray(latencies),
        window_period_s=pre.step * frame / raw.fs,
        max_abs_diff_vs_offline=float(np.max(np.abs(predictions - offline))),
    )
