"""Where the time goes when recognising speech, stage by stage.

ESE (Han et al., FPGA 2017) motivates an LSTM accelerator by the LSTM taking over 90%
of the time of a speech recognition pipeline. :func:`profile_pipeline` measures that share on
this pipeline: for each utterance, one at a time as a streaming recogniser would, it times
reading the audio file, computing features, every LSTM layer, the output layer (linear +
log-softmax) and CTC decoding, with :func:`time.perf_counter` around each stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lstmforge.data.audio import SAMPLE_RATE, read_audio
from lstmforge.errors import InputError
from lstmforge.tasks.speech.evaluate import decode
from lstmforge.tasks.speech.features import extract_features
from lstmforge.tasks.speech.module import SpeechRecognizer


def _timed(totals: dict[str, float], stage: str, fn: Callable, *args):
    start = time.perf_counter()
    result = fn(*args)
    totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - start
    return result


def _recognise(
    module: SpeechRecognizer,
    wav: str | Path,
    decoder: str,
    beam_width: int,
    totals: dict[str, float],
) -> float:
    """Recognise one file, adding each stage's seconds to ``totals``; returns audio seconds."""
    model = module.model
    mean, std = module.feature_statistics()
    audio = _timed(totals, "audio_loading", read_audio, wav)
    features = _timed(totals, "features", extract_features, audio, module.feature_config, mean, std)
    x = torch.from_numpy(features).unsqueeze(0)
    for k, layer in enumerate(model.layers):
        x, _ = _timed(totals, f"lstm_layer_{k}", layer, x)
    log_probs = _timed(
        totals, "output_layer", lambda h: torch.log_softmax(model.output(h), dim=-1), x
    )
    _timed(totals, "decoding", decode, log_probs[0], decoder, beam_width)
    return audio.size / SAMPLE_RATE


@torch.no_grad()
def profile_pipeline(
    module: SpeechRecognizer,
    wavs: Sequence[str | Path],
    decoder: str = "greedy",
    beam_width: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float | dict[str, float]]:
    """Time every stage over ``wavs``; returns seconds per stage, shares and the LSTM share.

    Result keys: ``seconds`` (stage -> total seconds; stages ``audio_loading``,
    ``features``, ``lstm_layer_0`` .., ``output_layer``, ``decoding``), ``share_percent``
    (stage -> percent of the total), ``lstm_share_percent``, ``total_seconds``,
    ``audio_seconds`` (duration of the audio processed), ``real_time_factor`` and
    ``utterances``. The first file is recognised once, untimed, before the measurement
    (one-time costs such as lazy imports are not part of a running recogniser).
    """
    if not wavs:
        raise InputError("profile: expected at least one audio file")
    module.eval()
    _recognise(module, wavs[0], decoder, beam_width, {})  # warm-up: lazy imports, caches
    totals: dict[str, float] = {}
    audio_seconds = 0.0
    for done, wav in enumerate(wavs, start=1):
        audio_seconds += _recognise(module, wav, decoder, beam_width, totals)
        if progress is not None:
            progress(done, len(wavs))
    total = sum(totals.values())
    lstm = sum(v for k, v in totals.items() if k.startswith("lstm_layer_"))
    return {
        "seconds": totals,
        "share_percent": {k: 100.0 * v / total for k, v in totals.items()},
        "lstm_share_percent": 100.0 * lstm / total,
        "total_seconds": total,
        "audio_seconds": audio_seconds,
        "real_time_factor": total / audio_seconds,
        "utterances": float(len(wavs)),
    }
