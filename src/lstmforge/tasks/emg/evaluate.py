"""Offline evaluation: one causal pass per recording, metrics on the held-out repetitions.

Each continuous recording is run window by window in order with the recurrent state carried
from the first window to the last (the same computation as the streaming run, in larger
chunks). Predictions are de-normalised with the subject's target normaliser, optionally
conditioned (:mod:`~lstmforge.tasks.emg.postprocess`, causal, over the whole recording), and the
windows whose last frame belongs to a test repetition are scored per subject and per joint
(:mod:`lstmforge.metrics.regression`). The summary is the mean ± standard deviation across
subjects of each subject's joint-averaged metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lstmforge.data.emg_preprocessing import PreprocessConfig
from lstmforge.data.emg_splits import TEST
from lstmforge.metrics.regression import METRIC_NAMES, regression_metrics
from lstmforge.tasks.emg.dataset import SubjectFeatures, window_arrays
from lstmforge.tasks.emg.postprocess import OutputConditioner

Predictor = Callable[[torch.Tensor, object], tuple[torch.Tensor, object]]


@dataclass
class SubjectPrediction:
    """Test-window targets and predictions of one subject, in the data's units."""

    subject: int
    joint_names: tuple[str, ...]
    true: np.ndarray
    predicted: np.ndarray
    window_rate_hz: float


@torch.no_grad()
def predict_windows(model: Predictor, images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Run ``model`` over windows [K, C, W] in order, state carried; returns [K, J]."""
    state = None
    outputs = []
    for start in range(0, images.shape[0], chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk]))
        y, state = model(x[None, :, None], state)
        outputs.append(y[0].float().numpy())
    return np.concatenate(outputs)


def predict_subject(
    model: Predictor,
    subject: SubjectFeatures,
    pre: PreprocessConfig,
    alpha: float = 1.0,
    deadband: float = 0.0,
) -> SubjectPrediction:
    """Predictions on the subject's test windows (all recordings, each run from its start)."""
    trues, preds = [], []
    for recording in subject.recordings:
        images, targets, codes = window_arrays(recording, pre.window, pre.step)
        predicted = subject.target_norm.inverse(predict_windows(model, images))
        predicted = OutputConditioner(alpha, deadband).run(predicted)
        test = codes == TEST
        trues.append(subject.target_norm.inverse(targets[test]))
        preds.append(predicted[test])
    raw = subject.recordings[0].raw
    rate = raw.fs / (pre.frame_length(raw.fs) * pre.step)
    return SubjectPrediction(
        subject.subject, subject.joint_names, np.concatenate(trues), np.concatenate(preds), rate
    )


def metrics_report(predictions: list[SubjectPrediction]) -> dict:
    """Per subject and joint metrics plus the across-subject mean ± std summary."""
    per_subject = {}
    for p in predictions:
        values = regression_metrics(p.true, p.predicted)
        per_subject[str(p.subject)] = {
            "per_joint": {
                name: {m: float(values[m][j]) for m in METRIC_NAMES}
                for j, name in enumerate(p.joint_names)
            },
            **{m: float(np.nanmean(values[m])) for m in METRIC_NAMES},
            "test_windows": int(p.true.shape[0]),
        }
    summary = {}
    for m in METRIC_NAMES:
        column = np.array([s[m] for s in per_subject.values()])
        summary[m] = float(np.nanmean(column))
        summary[f"{m}_std"] = float(np.nanstd(column))
    return {"summary": summary, "subjects": per_subject}


def flat_metrics(report: dict) -> dict[str, float]:
    """The summary plus ``{metric}_s{subject}`` entries, as one flat ``{name: float}``."""
    flat = dict(report["summary"])
    for subject, values in report["subjects"].items():
        for m in METRIC_NAMES:
            flat[f"{m}_s{subject}"] = values[m]
    return flat
