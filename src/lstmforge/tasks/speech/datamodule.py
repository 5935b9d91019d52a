"""Speech data for training and evaluation: utterance lists, features, padded CTC batches.

Two sources give the same thing, a list of :class:`LabelledUtterance` per split:

* ``synthetic``: the eSpeak corpus of :mod:`lstmforge.data.speech_synthetic` (train/val/test
  with held-out speakers), generated into ``data_dir`` if it is not there yet;
* ``timit``: a TIMIT tree (:mod:`lstmforge.data.timit`); validation is every 20th training
  speaker (held out of training), test is the core test set or the complete test set.

Features (:mod:`lstmforge.tasks.speech.features`) are computed once per utterance at setup and
kept in memory. Batches are ``(features [B, T, F], feature_lengths [B], targets [B, L],
target_lengths [B])`` with targets as class indices (phone index + 1; 0 is the CTC blank) and
zero padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lstmforge.data.audio import read_audio
from lstmforge.data.phones import PHONES, encode_phones
from lstmforge.data.timit import folded_phones, list_timit, read_phn
from lstmforge.errors import InputError
from lstmforge.tasks.speech.features import FeatureConfig, extract_features, log_mel_deltas

DATASETS = ("synthetic", "timit")


@dataclass(frozen=True)
class LabelledUtterance:
    """An audio file, its phone label file, and how to read the labels."""

    id: str
    speaker: str
    wav: Path
    phn: Path
    timit_labels: bool  # True: 61 TIMIT phones, folded to 39; False: already the 39 phones

    def load(self) -> tuple[np.ndarray, list[str]]:
        """Audio (16 kHz float32) and the 39-phone label sequence, both validated."""
        audio = read_audio(self.wav)
        if self.timit_labels:
            return audio, folded_phones(read_phn(self.phn, audio.size))
        return audio, [p for _, _, p in read_phn(self.phn, audio.size, inventory=PHONES)]


def synthetic_splits(
    data_dir: Path, num_utterances: int, seed: int
) -> dict[str, list[LabelledUtterance]]:
    """The synthetic corpus in ``data_dir`` (generated there first if missing) by split."""
    from lstmforge.data.speech_synthetic import generate_corpus, read_manifest

    manifest = read_manifest(generate_corpus(data_dir, num_utterances, seed))
    splits: dict[str, list[LabelledUtterance]] = {"train": [], "val": [], "test": []}
    for record in manifest["utterances"]:
        utterance = LabelledUtterance(
            record["id"],
            record["speaker"],
            data_dir / record["wav"],
            data_dir / record["phn"],
            timit_labels=False,
        )
        splits[record["split"]].append(utterance)
    return splits


def timit_splits(root: Path, test_split: str) -> dict[str, list[LabelledUtterance]]:
    """TIMIT train (minus every 20th speaker, kept for validation) and ``test_split``."""
    train_all = list_timit(root, "train")
    speakers = sorted({u.speaker for u in train_all})
    held_out = set(speakers[::20])

    def labelled(utterances) -> list[LabelledUtterance]:
        return [
            LabelledUtterance(u.id, u.speaker, u.wav, u.phn, timit_labels=True) for u in utterances
        ]

    splits = {
        "train": labelled(u for u in train_all if u.speaker not in held_out),
        "val": labelled(u for u in train_all if u.speaker in held_out),
        "test": labelled(list_timit(root, test_split)),
    }
    empty = [name for name, utterances in splits.items() if not utterances]
    if empty:
        raise InputError(
            f"{root}: TIMIT {', '.join(empty)} split(s) empty ({len(speakers)} training speakers; "
            "every 20th, starting with the first, is held out for validation)"
        )
    return splits


class FeatureDataset(Dataset):
    """Model inputs and CTC targets of a list of utterances, computed once."""

    def __init__(
        self,
        utterances: list[LabelledUtterance],
        features: FeatureConfig,
        mean: np.ndarray | None,
        std: np.ndarray | None,
    ) -> None:
        self.ids = [u.id for u in utterances]
        self.speakers = [u.speaker for u in utterances]
        self.inputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        for utterance in utterances:
            audio, phones = utterance.load()
            self.inputs.append(torch.from_numpy(extract_features(audio, features, mean, std)))
            self.targets.append(torch.tensor(encode_phones(phones), dtype=torch.long) + 1)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """Pad features and targets; returns (x, x_lengths, targets, target_lengths)."""
    inputs, targets = zip(*batch, strict=True)
    x = torch.nn.utils.rnn.pad_sequence(list(inputs), batch_first=True)
    y = torch.nn.utils.rnn.pad_sequence(list(targets), batch_first=True)
    x_lengths = torch.tensor([t.shape[0] for t in inputs])
    y_lengths = torch.tensor([t.shape[0] for t in targets])
    return x, x_lengths, y, y_lengths


def feature_statistics(
    utterances: list[LabelledUtterance], features: FeatureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the (unstacked) features of ``utterances``."""
    frames = np.concatenate([log_mel_deltas(u.load()[0], features) for u in utterances])
    return frames.mean(axis=0), frames.std(axis=0)


class SpeechDataModule(L.LightningDataModule):
    """Train/val/test loaders for ``dataset`` (``synthetic`` or ``timit``).

    Args:
        dataset: ``synthetic`` or ``timit``.
        data_dir: the synthetic corpus directory or the TIMIT root.
        features: feature settings; with ``normalisation="global"`` the training-set
            statistics are computed at setup (``feature_mean``/``feature_std``) unless given.
        batch_size: utterances per batch.
        corpus_utterances / corpus_seed: size and seed of the synthetic corpus.
        timit_test: ``core_test`` or ``test`` (TIMIT only).
    """

    def __init__(
        self,
        dataset: str,
        data_dir: str | Path,
        features: FeatureConfig,
        batch_size: int = 16,
        corpus_utterances: int = 400,
        corpus_seed: int = 0,
        timit_test: str = "core_test",
        feature_mean: np.ndarray | None = None,
        feature_std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise InputError(f"dataset: expected one of {DATASETS}, got {dataset!r}")
        if batch_size < 1:
            raise InputError(f"batch_size: expected >= 1, got {batch_size}")
        self.dataset = dataset
        self.data_dir = Path(data_dir)
        self.features = features
        self.batch_size = batch_size
        self.corpus_utterances = corpus_utterances
        self.corpus_seed = corpus_seed
        self.timit_test = timit_test
        self.feature_mean = feature_mean
        self.feature_std = feature_std
        self._splits: dict[str, list[LabelledUtterance]] | None = None
        self._data: dict[str, FeatureDataset] = {}

    def splits(self) -> dict[str, list[LabelledUtterance]]:
        """The utterance lists of train/val/test (listed once)."""
        if self._splits is None:
            if self.dataset == "synthetic":
                self._splits = synthetic_splits(
                    self.data_dir, self.corpus_utterances, self.corpus_seed
                )
            else:
                self._splits = timit_splits(self.data_dir, self.timit_test)
        return self._splits

    def prepare_data(self) -> None:
        """Generate the synthetic corpus if needed (once, before any process reads it)."""
        self.splits()

    def statistics(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Global normalisation statistics (computed from the training split when needed)."""
        if self.features.normalisation == "global" and self.feature_mean is None:
            self.feature_mean, self.feature_std = feature_statistics(
                self.splits()["train"], self.features
            )
        return self.feature_mean, self.feature_std

    def split_data(self, name: str) -> FeatureDataset:
        """The features of split ``name`` (computed on first use)."""
        if name not in self._data:
            mean, std = self.statistics()
            self._data[name] = FeatureDataset(self.splits()[name], self.features, mean, std)
        return self._data[name]

    def setup(self, stage: str | None = None) -> None:
        names = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for name in names.get(stage or "fit", ("train", "val", "test")):
            self.split_data(name)

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.split_data(name), batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
