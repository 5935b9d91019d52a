"""Armband augmentation: ring rotation, contact gains, training chunks and baselines."""

import numpy as np
import pytest
import torch

from emg_tiny import TINY, tiny_subject
from lstmforge.data.emg_augmentation import ArmbandAugmentation, rotate_ring
from lstmforge.data.emg_splits import TRAIN, VAL
from lstmforge.errors import InputError
from lstmforge.tasks.emg.baselines import training_windows
from lstmforge.tasks.emg.datamodule import EMGDataModule, WindowChunks


@pytest.fixture(scope="module")
def subject():
    return tiny_subject()


def test_whole_spacing_rotation_is_a_circular_roll():
    ring = np.arange(24, dtype=float).reshape(2, 12)
    np.testing.assert_array_equal(rotate_ring(ring, 0.0), ring)
    np.testing.assert_array_equal(rotate_ring(ring, 3.0), np.roll(ring, -3, axis=1))
    np.testing.assert_array_equal(rotate_ring(ring, -1.0), np.roll(ring, 1, axis=1))
    np.testing.assert_array_equal(rotate_ring(ring, 12.0), ring)


def test_fractional_rotation_reads_a_smooth_field_at_the_shifted_angles():
    n = 16
    theta = 2 * np.pi * np.arange(n) / n
    field = 2.0 + np.cos(theta)[None, :]  # one spatial period around the forearm
    for rotation in (0.25, 0.5, -0.7, 2.4):
        expected = 2.0 + np.cos(theta + 2 * np.pi * rotation / n)
        # linear interpolation of a cosine sampled every 2π/16: error ≤ (2π/16)² / 8
        np.testing.assert_allclose(rotate_ring(field, rotation)[0], expected, atol=0.02)
    half = rotate_ring(np.eye(4), 0.5)  # channel c = mean of c and c + 1 (mod 4)
    np.testing.assert_allclose(half[1], [0.5, 0.5, 0.0, 0.0])


def test_draws_stay_in_range_and_inactive_augmentation_is_the_identity():
    rng = np.random.default_rng(0)
    aug = ArmbandAugmentation(shift=0.5, gain=0.2)
    draws = [aug.draw(12, rng) for _ in range(2000)]
    rotations = np.array([r for r, _ in draws])
    log_gains = np.log(np.stack([g for _, g in draws]))
    assert np.all(np.abs(rotations) <= 0.5) and rotations.std() == pytest.approx(
        1.0 / 12**0.5, rel=0.1
    )
    assert log_gains.std() == pytest.approx(0.2, rel=0.05) and abs(log_gains.mean()) < 0.01
    envelope = rng.random((50, 12)).astype(np.float32)
    none = ArmbandAugmentation()
    assert not none.active and aug.active
    np.testing.assert_array_equal(none.apply(envelope, rng), envelope)
    mean, std = envelope.mean(0), envelope.std(0)
    z = (envelope - mean) / std
    np.testing.assert_allclose(none.apply_standardised(z, mean, std, rng), z, atol=1e-5)
    # one placement per call: the same gains on every frame
    gains_only = ArmbandAugmentation(gain=0.3).apply(envelope, np.random.default_rng(1))
    ratio = gains_only / envelope
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)


@pytest.mark.parametrize("field", ["shift", "gain"])
def test_bad_augmentation_is_named(field):
    for value in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InputError, match=f"augmentation {field}"):
            ArmbandAugmentation(**{field: value})


def test_training_chunks_are_augmented_and_validation_chunks_are_not(subject):
    pre = TINY.preprocess
    aug = ArmbandAugmentation(shift=0.5, gain=0.2)
    plain = WindowChunks([subject], TRAIN, pre.window, pre.step, chunk=4)
    augmented = WindowChunks([subject], TRAIN, pre.window, pre.step, chunk=4, augmentation=aug)
    torch.manual_seed(0)
    x_plain, y_plain = plain[0]
    x_aug, y_aug = augmented[0]
    torch.testing.assert_close(y_aug, y_plain)
    assert x_aug.shape == x_plain.shape and not torch.allclose(x_aug, x_plain)
    torch.manual_seed(0)
    again, _ = augmented[0]
    torch.testing.assert_close(again, x_aug)  # draws follow torch's seeded generator
    # the augmented standardised chunk is the augmentation of the raw envelope
    r, first = augmented.index[0]
    norm = subject.input_norm
    raw = norm.inverse(subject.recordings[r].frames[first : first + 3 * pre.step + pre.window])
    torch.manual_seed(0)
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
    expected = norm.transform(aug.apply(raw, rng))
    torch.testing.assert_close(x_aug[0, 0], torch.from_numpy(expected[: pre.window].T))
    inactive = WindowChunks([subject], VAL, pre.window, pre.step, 4, ArmbandAugmentation())
    assert inactive.augmentation is None


def test_calibration_and_validation_fallback_read_the_recorded_chunks():
    data = EMGDataModule(
        TINY, None, chunk=4, batch_size=2, augmentation=ArmbandAugmentation(0.5, 0.2)
    )
    assert data.train_set.augmentation is not None
    assert data.calibration_dataloader().dataset.augmentation is None
    recorded, _ = data.calibration_dataloader().dataset[0]
    plain = WindowChunks(data.subjects, TRAIN, TINY.preprocess.window, TINY.preprocess.step, 4)
    torch.testing.assert_close(recorded, plain[0][0])


def test_baseline_training_set_gets_augmented_copies(subject):
    pre = TINY.preprocess
    x, y = training_windows(subject, pre)
    aug = ArmbandAugmentation(shift=0.5)
    x_aug, y_aug = training_windows(subject, pre, aug, copies=3, seed=0)
    assert x_aug.shape == (4 * x.shape[0], x.shape[1])
    np.testing.assert_array_equal(x_aug[: len(x)], x)
    np.testing.assert_array_equal(y_aug, np.concatenate([y] * 4))
    assert not np.allclose(x_aug[len(x) :], np.concatenate([x] * 3))
    again, _ = training_windows(subject, pre, aug, copies=3, seed=0)
    np.testing.assert_array_equal(again, x_aug)
    with pytest.raises(InputError, match="copies"):
        training_windows(subject, pre, aug, copies=0)
