"""Lightning data for sEMG regression: chunks of consecutive long-exposure windows.

A training example is a chunk of ``chunk`` consecutive windows ([T, 1, C, W] images and the
[T, J] normalised targets at each window's last frame) lying entirely inside one contiguous
run of training frames, so no input frame of a validation or test repetition is ever seen in
training. The recurrent state starts at zero at every chunk (truncated back-propagation through
time); evaluation then carries it through whole recordings (``evaluate``). With an active
:class:`~lstmforge.data.emg_augmentation.ArmbandAugmentation` every training chunk is read
through one fresh random armband placement (rotation and contact gains, the same for all its
windows); validation and test data are never augmented.

Validation (``validation=``) is either ``"chunks"`` — the same zero-state chunks, from the
validation repetitions — or ``"recording"``: every recording as one sequence of all its
windows, run causally with the state carried like the evaluation, scored on the windows whose
last frame lies in a validation repetition (:class:`RecordingWindows`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lstmforge.data.emg_augmentation import ArmbandAugmentation
from lstmforge.data.emg_preprocessing import long_exposure_images
from lstmforge.data.emg_splits import TRAIN, VAL
from lstmforge.errors import InputError
from lstmforge.tasks.emg.dataset import (
    EMGDataConfig,
    SubjectFeatures,
    build_features,
    window_arrays,
)


def contiguous_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` index ranges where ``mask`` is True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class WindowChunks(Dataset):
    """Chunks of ``chunk`` consecutive windows from the frames of one split.

    ``augmentation`` (training only) draws one armband placement per chunk from torch's
    global generator, so ``seed_everything`` makes the draws reproducible.
    """

    def __init__(
        self,
        subjects: list[SubjectFeatures],
        code: int,
        window: int,
        step: int,
        chunk: int,
        augmentation: ArmbandAugmentation | None = None,
    ) -> None:
        self.window, self.step, self.chunk = window, step, chunk
        self.augmentation = augmentation if augmentation and augmentation.active else None
        self.recordings = [r for s in subjects for r in s.recordings]
        self.norms = [s.input_norm for s in subjects for _ in s.recordings]
        span = (chunk - 1) * step + window  # frames covered by one chunk
        self.index: list[tuple[int, int]] = []
        for r, recording in enumerate(self.recordings):
            for start, stop in contiguous_runs(recording.split == code):
                self.index.extend((r, f) for f in range(start, stop - span + 1, chunk * step))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, first = self.index[i]
        recording = self.recordings[r]
        last = first + (self.chunk - 1) * self.step + self.window
        frames = recording.frames[first:last]
        if self.augmentation is not None:
            rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
            norm = self.norms[r]
            frames = self.augmentation.apply_standardised(frames, norm.mean, norm.std, rng)
        images = long_exposure_images(frames, self.window, self.step)
        ends = np.arange(first + self.window - 1, last, self.step)
        x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)  # [T, 1, C, W]
        return x, torch.from_numpy(recording.targets[ends])


class RecordingWindows(Dataset):
    """Whole recordings: all windows [K, 1, C, W], targets [K, J] and a mask of ``code`` windows."""

    def __init__(self, subjects: list[SubjectFeatures], code: int, window: int, step: int) -> None:
        self.items = []
        for recording in (r for s in subjects for r in s.recordings):
            images, targets, codes = window_arrays(recording, window, step)
            if np.any(codes == code):
                self.items.append((images, targets, codes == code))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, targets, mask = self.items[i]
        x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
        return x, torch.from_numpy(targets), torch.from_numpy(mask)


VALIDATION_MODES = ("chunks", "recording")


class EMGDataModule(L.LightningDataModule):
    """Train/val chunks of the selected subjects; ``subjects`` holds the full features."""

    def __init__(
        self,
        cfg: EMGDataConfig,
        data_dir: Path | None,
        chunk: int = 16,
        batch_size: int = 8,
        validation: str = "chunks",
        augmentation: ArmbandAugmentation | None = None,
    ) -> None:
        super().__init__()
        if chunk < 1 or batch_size < 1:
            raise InputError(f"chunk and batch_size must be >= 1, got {chunk}, {batch_size}")
        if validation not in VALIDATION_MODES:
            raise InputError(f"validation must be one of {VALIDATION_MODES}, got {validation!r}")
        self.validation = validation
        self.cfg, self.data_dir = cfg, data_dir
        self.chunk, self.batch_size = chunk, batch_size
        self.subjects = build_features(cfg, data_dir)
        pre = cfg.preprocess
        self.train_set = WindowChunks(
            self.subjects, TRAIN, pre.window, pre.step, chunk, augmentation
        )
        # the training chunks as recorded: for calibration and the validation fallback
        self.train_set_recorded = WindowChunks(self.subjects, TRAIN, pre.window, pre.step, chunk)
        self.val_set = WindowChunks(self.subjects, VAL, pre.window, pre.step, chunk)
        if len(self.train_set) == 0:
            raise InputError(
                f"no training chunk of {chunk} windows fits in the training repetitions; "
                "use a smaller --chunk or --window"
            )

    @property
    def n_channels(self) -> int:
        """EMG channels C."""
        return int(self.subjects[0].recordings[0].frames.shape[1])

    @property
    def n_outputs(self) -> int:
        """Regressed joints J."""
        return int(self.subjects[0].recordings[0].targets.shape[1])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def calibration_dataloader(self) -> DataLoader:
        """Training chunks without augmentation (fixed-point ranges of real data)."""
        return DataLoader(self.train_set_recorded, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        pre = self.cfg.preprocess
        if self.validation == "recording":
            windows = RecordingWindows(self.subjects, VAL, pre.window, pre.step)
            if not len(windows):
                windows = RecordingWindows(self.subjects, TRAIN, pre.window, pre.step)
                self._warn_no_validation()
            return DataLoader(windows, batch_size=None)
        if not len(self.val_set):
            self._warn_no_validation()
            return DataLoader(self.train_set_recorded, batch_size=self.batch_size * 4)
        return DataLoader(self.val_set, batch_size=self.batch_size * 4)

    @staticmethod
    def _warn_no_validation() -> None:
        warnings.warn(
            "no validation data (no validation repetition, or none long enough for a chunk): "
            "validating, early-stopping and picking best.ckpt on the training data",
            stacklevel=3,
        )
