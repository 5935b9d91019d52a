"""The synthetic generator's sessions and non-stationarities (stage 6) and the session split."""

import numpy as np
import pytest
from scipy import signal

from lstmforge.data.emg_splits import TEST, TRAIN, VAL, RepetitionSplit, split_sessions
from lstmforge.data.emg_synthetic import (
    PRESETS,
    SyntheticEMGConfig,
    draw_geometry,
    electrode_gains,
    fatigued,
    generate_subject,
    mixing_matrix,
    preset,
    recruitment_fluctuation,
)
from lstmforge.errors import InputError
from lstmforge.tasks.emg.dataset import EMGDataConfig

TINY = dict(n_subjects=1, n_repetitions=2, movements=("pinch",), rest_s=1.0, hold_s=1.0)


def test_realistic_sessions_are_seeded_and_share_the_protocol():
    cfg = SyntheticEMGConfig(**TINY, n_sessions=2, **preset("realistic"))
    first, second = generate_subject(cfg, 1)
    again = generate_subject(cfg, 1)
    np.testing.assert_array_equal(again[1].emg, second.emg)
    assert first.emg.shape[1] == second.emg.shape[1] == 12
    assert set(np.unique(second.repetition)) == {0, 1, 2}
    assert "session 2" in second.source
    n = min(first.n_samples, second.n_samples)
    assert not np.allclose(first.emg[:n], second.emg[:n])


def test_clean_first_session_does_not_depend_on_more_sessions_or_on_effect_streams():
    one = generate_subject(SyntheticEMGConfig(**TINY), 1)
    two = generate_subject(SyntheticEMGConfig(**TINY, n_sessions=2), 1)
    assert len(one) == 1 and len(two) == 2
    np.testing.assert_array_equal(one[0].emg, two[0].emg)
    shifted = generate_subject(SyntheticEMGConfig(**TINY, electrode_shift=0.5), 1)[0]
    np.testing.assert_array_equal(shifted.kinematics, one[0].kinematics)
    assert not np.array_equal(shifted.emg, one[0].emg)


def test_electrode_shift_moves_energy_to_the_neighbouring_electrode():
    geometry = draw_geometry(np.random.default_rng(3))
    m0 = mixing_matrix(12, geometry)
    # one full spacing: electrode k now sits where electrode k + 1 was
    np.testing.assert_allclose(mixing_matrix(12, geometry, 1.0), np.roll(m0, -1, axis=0))
    # half a spacing: every muscle's energy centroid on the ring moves half an electrode
    for shift in (0.25, 0.5):
        moved = _centroid(mixing_matrix(12, geometry, shift)) - _centroid(m0)
        np.testing.assert_allclose((moved + 6) % 12 - 6, -shift, atol=0.1)


def _centroid(mixing: np.ndarray) -> np.ndarray:
    """Circular centre of each muscle's energy over the electrode ring, in electrode indices."""
    n = mixing.shape[0]
    phase = np.exp(2j * np.pi * np.arange(n) / n)
    return np.angle(phase @ mixing**2) * n / (2 * np.pi)


def test_electrode_gains_drift_with_the_stated_spread():
    rng = np.random.default_rng(0)
    fs, n = 100.0, 6000  # a 60 s session
    np.testing.assert_array_equal(electrode_gains(n, 4, fs, 0.0, rng), np.ones((n, 4)))
    log_gain = np.log(electrode_gains(n, 4000, fs, 0.2, rng))
    assert log_gain[0].std() == pytest.approx(0.2, rel=0.1)  # donning offset
    drift = log_gain[-1] - log_gain[0]
    assert drift.std() == pytest.approx(0.2, rel=0.15)  # random walk over the session
    assert np.abs(np.diff(log_gain, axis=0)).max() < 0.05  # continuous: no jumps


def _median_frequency(x: np.ndarray, fs: float) -> float:
    f, pxx = signal.welch(x, fs=fs, nperseg=1000)
    cumulative = np.cumsum(pxx)
    return float(f[np.searchsorted(cumulative, cumulative[-1] / 2)])


def test_fatigue_lowers_median_frequency_and_raises_amplitude():
    fs, n = 2000.0, 60000
    rng = np.random.default_rng(1)
    centres = np.full(2, 100.0)
    sources = signal.sosfilt(
        signal.butter(2, [50.0, 200.0], btype="bandpass", fs=fs, output="sos"),
        rng.standard_normal((n, 2)),
        axis=0,
    )
    sources /= sources.std(axis=0)
    tired = fatigued(sources, np.full((n, 2), 0.5), centres, 1.0, fs, rng)
    start, end = tired[: n // 10, 0], tired[-n // 10 :, 0]
    assert _median_frequency(end, fs) < 0.8 * _median_frequency(start, fs)
    assert end.std() > 1.6 * start.std()
    assert fatigued(sources, np.full((n, 2), 0.5), centres, 0.0, fs, rng) is sources


def test_recruitment_noise_is_largest_at_low_force():
    rng = np.random.default_rng(2)
    n, fs = 40000, 2000.0
    activation = np.concatenate([np.full((n, 1), 0.02), np.full((n, 1), 0.8)], axis=1)
    ratio = recruitment_fluctuation(activation, 0.3, fs, rng) / activation
    assert ratio.mean(axis=0) == pytest.approx([1.0, 1.0], abs=0.05)  # unbiased amplitude
    assert ratio[:, 0].std() > 2.0 * ratio[:, 1].std()
    assert recruitment_fluctuation(activation, 0.0, fs, rng) is activation


def test_session_split_and_bad_settings():
    reps = [np.array([1, 0, 4, 4, 0, 2]), np.array([1, 4, 0])]
    codes = split_sessions(reps, RepetitionSplit(), "sessions")
    np.testing.assert_array_equal(codes[0], [TRAIN, TRAIN, VAL, VAL, VAL, TRAIN])
    np.testing.assert_array_equal(codes[1], [TEST] * 3)
    with pytest.raises(InputError, match="needs >= 2 sessions"):
        split_sessions(reps[:1], RepetitionSplit(), "sessions")
    three = [*reps, np.array([4, 4, 1, 0])]
    codes = split_sessions(three, RepetitionSplit(), "sessions-val")
    np.testing.assert_array_equal(codes[0], [TRAIN] * 6)  # every repetition, 4 included
    np.testing.assert_array_equal(codes[1], [VAL] * 3)  # the whole session before the last
    np.testing.assert_array_equal(codes[2], [TEST] * 4)
    with pytest.raises(InputError, match="'sessions-val' needs >= 3 sessions"):
        split_sessions(reps, RepetitionSplit(), "sessions-val")
    with pytest.raises(InputError, match="hold_out"):
        EMGDataConfig(hold_out="subjects").validate()
    for hold_out in ("sessions", "sessions-val"):
        with pytest.raises(InputError, match="needs the synthetic data"):
            EMGDataConfig(dataset="ninapro-db2", hold_out=hold_out).validate()
    with pytest.raises(InputError, match="synthetic preset"):
        preset("noisy")
    with pytest.raises(InputError, match="fatigue"):
        SyntheticEMGConfig(fatigue=1.5).validate()
    assert set(PRESETS["clean"].values()) == {0.0}


def test_data_config_round_trips_sessions_and_effects():
    cfg = EMGDataConfig(
        synthetic=SyntheticEMGConfig(n_sessions=3, **preset("realistic")), hold_out="sessions"
    )
    assert EMGDataConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()
    del old["hold_out"]  # checkpoints written before sessions existed
    assert EMGDataConfig.from_dict(old).hold_out == "repetitions"
