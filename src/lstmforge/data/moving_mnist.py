"""Moving MNIST (Srivastava et al., ICML 2015; the setup of Shi et al., NIPS 2015, Sec. 4.1).

Each sequence is 20 frames of 64 x 64 (10 input, 10 target) with two digits bouncing inside
the frame. Every digit starts at a uniformly random position, moves in a direction drawn
uniformly on the unit circle with a speed drawn uniformly from a fixed range, and bounces off
the edges; overlapping digits combine by the pixel-wise maximum. Sequences are generated
lazily and deterministically from ``(seed, index)``, so a split is fixed by its seed.

Also reads the widely used fixed test file ``mnist_test_seq.npy`` (uint8 ``[20, 10000, 64,
64]``, Srivastava et al.).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmforge.errors import InputError

FRAME_SIZE = 64
SEQ_LEN = 20
SPEED_RANGE = (2.0, 5.0)  # pixels per frame (Srivastava's generator moves ~3.6 px/frame)


def moving_mnist_sequence(
    digits: np.ndarray,
    rng: np.random.Generator,
    seq_len: int = SEQ_LEN,
    frame_size: int = FRAME_SIZE,
    num_digits: int = 2,
    speed_range: tuple[float, float] = SPEED_RANGE,
) -> np.ndarray:
    """One uint8 ``[seq_len, frame_size, frame_size]`` sequence of ``num_digits`` bouncing digits."""
    digit_size = digits.shape[-1]
    span = frame_size - digit_size
    if span <= 0:
        raise InputError(f"frame_size {frame_size} must exceed the digit size {digit_size}")
    frames = np.zeros((seq_len, frame_size, frame_size), dtype=np.uint8)
    for _ in range(num_digits):
        digit = digits[rng.integers(len(digits))]
        pos = rng.uniform(0.0, span, size=2)
        theta = rng.uniform(0.0, 2.0 * np.pi)
        velocity = rng.uniform(*speed_range) * np.array([np.sin(theta), np.cos(theta)])
        for t in range(seq_len):
            top, left = np.rint(pos).astype(int)
            window = frames[t, top : top + digit_size, left : left + digit_size]
            np.maximum(window, digit, out=window)
            pos = pos + velocity
            for axis in range(2):  # reflect off the walls (repeatedly if a step is long)
                while not 0.0 <= pos[axis] <= span:
                    pos[axis] = -pos[axis] if pos[axis] < 0.0 else 2.0 * span - pos[axis]
                    velocity[axis] = -velocity[axis]
    return frames


class MovingMNIST:
    """A fixed, lazily generated set of Moving MNIST sequences: item ``i`` is uint8 [T, H, W].

    ``digits`` are the digit images the sequences may use (train and test sets get disjoint
    digits); item ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
    """

    def __init__(
        self,
        digits: np.ndarray,
        num_sequences: int,
        seed: int,
        seq_len: int = SEQ_LEN,
        frame_size: int = FRAME_SIZE,
        num_digits: int = 2,
    ) -> None:
        if num_sequences < 1:
            raise InputError(f"num_sequences must be >= 1, got {num_sequences}")
        self.digits = digits
        self.num_sequences = num_sequences
        self.seed = seed
        self.seq_len = seq_len
        self.frame_size = frame_size
        self.num_digits = num_digits

    def __len__(self) -> int:
        return self.num_sequences

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_sequences:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        return moving_mnist_sequence(
            self.digits, rng, self.seq_len, self.frame_size, self.num_digits
        )

    def to_array(self) -> np.ndarray:
        """All sequences as one uint8 ``[N, T, H, W]`` array."""
        return np.stack([self[i] for i in range(len(self))])


def _mnist_test_seq_array(path: str | Path, mmap_mode: str | None) -> np.ndarray:
    """The checked ``[T, N, 64, 64]`` uint8 array of ``path`` (memory-mapped if asked)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: Moving MNIST file not found")
    try:
        data = np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npy file ({err})") from None
    if not isinstance(data, np.ndarray) or data.ndim != 4 or data.shape[2:] != (64, 64):
        raise InputError(
            f"{path}: expected an array [T, N, 64, 64] like mnist_test_seq.npy, "
            f"got shape {getattr(data, 'shape', None)}"
        )
    if data.dtype != np.uint8:
        raise InputError(f"{path}: expected uint8 frames, got {data.dtype}")
    return data


def check_mnist_test_seq(path: str | Path) -> None:
    """Check ``path`` as :func:`load_mnist_test_seq` does, from its header alone (the official
    file is 800 MB)."""
    _mnist_test_seq_array(path, "r")


def load_mnist_test_seq(path: str | Path) -> np.ndarray:
    """Read ``mnist_test_seq.npy`` (uint8 ``[T, N, 64, 64]``) as uint8 ``[N, T, 64, 64]``."""
    data = _mnist_test_seq_array(path, None)
    return np.ascontiguousarray(data.transpose(1, 0, 2, 3))
