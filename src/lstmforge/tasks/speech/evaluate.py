"""Scoring a trained acoustic model: phone error rate on a test split.

The model's LSTM layers and output layer are called only through their ``forward``, so a
model whose layers were replaced by engine-backed ones (:func:`lstmforge.engine.substitute`
with a compressed ``.lfz``) is scored the same way.
"""

from __future__ import annotations

import lightning as L
import torch

from lstmforge.errors import InputError
from lstmforge.metrics.phone_error_rate import EditCounts, edit_counts
from lstmforge.tasks.speech.datamodule import collate
from lstmforge.tasks.speech.decoding import beam_search_decode, greedy_decode

DECODERS = ("greedy", "beam")


def decode(log_probs: torch.Tensor, decoder: str = "greedy", beam_width: int = 8) -> list[int]:
    """Class indices (phone index + 1) decoded from one utterance's [T, C] log-probabilities."""
    if decoder not in DECODERS:
        raise InputError(f"decoder: expected one of {DECODERS}, got {decoder!r}")
    scores = log_probs.detach().float().cpu().numpy()
    if decoder == "greedy":
        return greedy_decode(scores)
    return beam_search_decode(scores, beam_width)


@torch.no_grad()
def evaluate_split(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    split: str = "test",
    decoder: str = "greedy",
    beam_width: int = 8,
) -> dict[str, float]:
    """PER (percent) with substitution/deletion/insertion rates and counts on ``split``, and
    the PER of every speaker as ``per_speaker/<speaker>`` (e.g. ``per_speaker/en-us:m3``)."""
    module.eval()
    data = datamodule.split_data(split)
    loader = torch.utils.data.DataLoader(
        data, batch_size=datamodule.batch_size, shuffle=False, collate_fn=collate
    )
    speakers = iter(data.speakers)
    total = EditCounts(0, 0, 0, 0)
    by_speaker: dict[str, EditCounts] = {}
    for x, x_lengths, y, y_lengths in loader:
        log_probs = module(x)
        for k in range(x.shape[0]):
            hypothesis = decode(log_probs[k, : x_lengths[k]], decoder, beam_width)
            counts = edit_counts(y[k, : y_lengths[k]].tolist(), hypothesis)
            speaker = next(speakers)
            by_speaker[speaker] = by_speaker.get(speaker, EditCounts(0, 0, 0, 0)) + counts
            total = total + counts
    per_speaker = {f"per_speaker/{s}": c.rates()["per"] for s, c in sorted(by_speaker.items())}
    return total.rates() | {"utterances": float(len(data))} | per_speaker


def evaluate(module: L.LightningModule, datamodule: L.LightningDataModule) -> dict[str, float]:
    """The :class:`~lstmforge.tasks.TaskSpec` evaluation: greedy-decoding PER on the test split."""
    return evaluate_split(module, datamodule, "test", "greedy")
