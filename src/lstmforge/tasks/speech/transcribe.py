"""Phone transcription of an audio file with a trained acoustic model."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmforge.data.audio import read_audio
from lstmforge.data.phones import PHONES
from lstmforge.tasks.speech.evaluate import decode
from lstmforge.tasks.speech.features import extract_features
from lstmforge.tasks.speech.module import SpeechRecognizer


@torch.no_grad()
def transcribe(
    module: SpeechRecognizer, wav: str | Path, decoder: str = "greedy", beam_width: int = 8
) -> list[str]:
    """The phone sequence recognised in ``wav`` (any sample rate: resampled to 16 kHz)."""
    audio = read_audio(wav, resample=True)
    mean, std = module.feature_statistics()
    features = torch.from_numpy(extract_features(audio, module.feature_config, mean, std))
    log_probs = module.eval()(features.unsqueeze(0))[0]
    return [PHONES[label - 1] for label in decode(log_probs, decoder, beam_width)]
