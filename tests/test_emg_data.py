"""Synthetic sEMG generator, preprocessing and repetition splits."""

import numpy as np
import pytest
from scipy import signal

from lstmforge.data.emg_preprocessing import (
    CausalFilter,
    PreprocessConfig,
    Standardiser,
    design_filter,
    emg_envelope,
    envelope,
    frame_targets,
    long_exposure_images,
    window_ends,
)
from lstmforge.data.emg_splits import (
    TEST,
    TRAIN,
    UNUSED,
    VAL,
    RepetitionSplit,
    fill_rest,
    require_splits,
    split_by_repetition,
)
from lstmforge.data.emg_synthetic import (
    JOINT_NAMES,
    SyntheticEMGConfig,
    draw_geometry,
    generate_subject,
    minimum_jerk,
    mixing_matrix,
    muscle_activations,
)
from lstmforge.errors import InputError

SMALL = SyntheticEMGConfig(
    n_subjects=2, n_repetitions=2, movements=("index_flexion", "power_grasp"), rest_s=1.0
)


@pytest.fixture(scope="module")
def subject1():
    return generate_subject(SMALL, 1)[0]


def test_synthetic_recording_layout_and_labels(subject1):
    r = subject1
    assert r.emg.shape == (r.n_samples, 12) and r.kinematics.shape == (r.n_samples, 10)
    assert r.joint_names == JOINT_NAMES and r.fs == 2000.0
    assert set(np.unique(r.stimulus)) == {0, 1, 2}
    assert set(np.unique(r.repetition)) == {0, 1, 2}
    # at rest the fingers are extended, during index flexion the index MCP is flexed
    assert np.abs(r.kinematics[r.stimulus == 0]).max() < 15.0
    index = r.kinematics[r.stimulus == 1, JOINT_NAMES.index("index_mcp")]
    assert index.max() > 50.0


def test_synthetic_is_seeded_and_subjects_differ(subject1):
    again = generate_subject(SMALL, 1)[0]
    np.testing.assert_array_equal(again.emg, subject1.emg)
    other = generate_subject(SMALL, 2)[0]
    rng = np.random.default_rng(0)
    a, b = mixing_matrix(12, draw_geometry(rng)), mixing_matrix(12, draw_geometry(rng))
    assert not np.allclose(a, b)
    assert other.emg.shape[1] == 12 and not np.array_equal(other.emg[:1000], subject1.emg[:1000])


def test_sixteen_electrodes_and_bad_config():
    cfg = SyntheticEMGConfig(n_subjects=1, n_repetitions=1, movements=("pinch",), n_electrodes=16)
    assert generate_subject(cfg, 1)[0].emg.shape[1] == 16
    with pytest.raises(InputError, match="movements"):
        SyntheticEMGConfig(movements=("juggling",)).validate()
    with pytest.raises(InputError, match="fs"):
        SyntheticEMGConfig(fs=500.0).validate()
    with pytest.raises(InputError, match="envelope_rate must be in"):
        PreprocessConfig(envelope_rate=0.0).frame_length(2000.0)


def test_emg_amplitude_tracks_movement_with_power_line(subject1):
    r = subject1
    env = emg_envelope(r.emg, r.fs, PreprocessConfig())
    frame = PreprocessConfig().frame_length(r.fs)
    moving = frame_targets(r.stimulus[:, None], frame)[:, 0] > 0
    assert env[moving].mean() > 1.5 * env[~moving].mean()
    # the raw signal carries 50 Hz interference: a spectral peak there
    f, pxx = signal.welch(r.emg[:, 0], fs=r.fs, nperseg=4000)
    near = (f > 40) & (f < 60)
    assert f[near][np.argmax(pxx[near])] == pytest.approx(50.0, abs=1.0)


def test_activations_lead_kinematics_and_cocontract():
    fs = 1000.0
    t = np.arange(3000) / fs
    angles = np.zeros((t.size, 10))
    angles[:, 2] = 90.0 * minimum_jerk((t - 1.0) / 0.5)  # index flexes at t = 1 s
    act = muscle_activations(angles, np.ones(t.size), fs, cocontraction=0.3, delay_s=0.06)
    flexor_index, extensor_index = act[:, 1], act[:, 6]
    onset_emg = np.argmax(flexor_index > 0.05) / fs
    onset_motion = np.argmax(angles[:, 2] > 0.5) / fs
    assert onset_emg < onset_motion  # electromechanical delay: EMG first
    assert extensor_index[1300] > 0.2 * flexor_index[1300]  # co-contraction


def test_filter_response_band_pass_and_notch():
    cfg = PreprocessConfig()
    sos = design_filter(2000.0, cfg)
    freqs, response = signal.sosfreqz(sos, worN=[5.0, 50.0, 120.0, 800.0], fs=2000.0)
    gain = np.abs(response)
    assert gain[2] > 0.9  # pass band
    assert gain[0] < 0.05 and gain[3] < 0.05  # stop bands
    assert gain[1] < 0.05  # notch


def test_causal_filter_in_chunks_equals_one_pass():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3001, 3))
    sos = design_filter(2000.0, PreprocessConfig())
    whole = signal.sosfilt(sos, x, axis=0)
    filt = CausalFilter(sos, 3)
    pieces = np.concatenate([filt(x[a:b]) for a, b in ((0, 7), (7, 1500), (1500, 3001))])
    np.testing.assert_allclose(pieces, whole, atol=1e-12)


def test_envelope_targets_and_windows_hand_worked():
    x = np.array([[3.0], [-4.0], [1.0], [-1.0], [5.0]])  # 2 complete frames of 2, one left over
    np.testing.assert_allclose(envelope(x, 2, "rms")[:, 0], [np.sqrt(12.5), 1.0])
    np.testing.assert_allclose(envelope(x, 2, "mav")[:, 0], [3.5, 1.0])
    kin = np.arange(10.0)[:, None]
    np.testing.assert_array_equal(frame_targets(kin, 3)[:, 0], [2.0, 5.0, 8.0])
    frames = np.arange(14.0).reshape(7, 2)  # 7 frames x 2 channels
    images = long_exposure_images(frames, window=3, step=2)
    np.testing.assert_array_equal(window_ends(7, 3, 2), [2, 4, 6])
    assert images.shape == (3, 2, 3)  # [K, C, W]
    np.testing.assert_array_equal(images[1], frames[2:5].T)
    assert window_ends(2, 3, 1).size == 0


def test_standardiser_uses_training_statistics_only():
    train = np.array([[0.0, 1.0], [2.0, 1.0]])
    norm = Standardiser.fit(train, "x")
    np.testing.assert_allclose(norm.transform(np.array([[1.0, 1.0], [3.0, 2.0]])), [[0, 0], [2, 1]])
    np.testing.assert_allclose(norm.inverse(norm.transform(train)), train)
    with pytest.raises(InputError, match="at least 2"):
        Standardiser.fit(train[:1], "x")


@pytest.mark.parametrize(
    "field, cfg",
    [
        ("band_hz", PreprocessConfig(band_hz=(20.0, 1200.0))),
        ("envelope", PreprocessConfig(envelope="peak")),
        ("window", PreprocessConfig(window=0)),
    ],
)
def test_impossible_preprocessing_is_rejected(field, cfg):
    with pytest.raises(InputError, match=field):
        cfg.validate(2000.0)


def test_rest_is_attributed_to_the_repetition_before():
    rep = np.array([0, 0, 1, 1, 0, 0, 2, 2, 0, 1, 0])
    np.testing.assert_array_equal(fill_rest(rep), [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1])
    codes = split_by_repetition(rep, RepetitionSplit(train=(1,), val=(), test=(2,)))
    np.testing.assert_array_equal(codes, [TRAIN] * 6 + [TEST] * 3 + [TRAIN] * 2)
    codes = split_by_repetition(np.array([7, 7, 1]), RepetitionSplit())
    np.testing.assert_array_equal(codes, [UNUSED, UNUSED, TRAIN])
    assert VAL in split_by_repetition(np.array([4, 0, 2]), RepetitionSplit())


def test_split_errors_name_the_problem():
    with pytest.raises(InputError, match="overlaps"):
        RepetitionSplit(train=(1, 2), test=(2,)).validate()
    with pytest.raises(InputError, match="S3_E1_A1.mat: no test repetitions"):
        require_splits([np.array([TRAIN, TRAIN])], "S3_E1_A1.mat", (TRAIN, TEST))


def test_baseline_windows_hold_training_frames_only():
    from lstmforge.tasks.emg.baselines import whole_training_windows

    split = np.array([TRAIN, TRAIN, TRAIN, TEST, TRAIN, TRAIN, TRAIN, TRAIN])
    # windows of 3 frames ending at frames 2..7: only those without the test frame 3 are kept
    kept = whole_training_windows(split, 3, 1)
    np.testing.assert_array_equal(kept, [True, False, False, False, True, True])


def test_subject_lists_are_checked():
    from lstmforge.tasks.emg.dataset import EMGDataConfig

    for subjects, message in [((1, 1), "distinct"), ((0,), "1..3"), ((4,), "1..3")]:
        cfg = EMGDataConfig(subjects=subjects, synthetic=SyntheticEMGConfig(n_subjects=3))
        with pytest.raises(InputError, match=message):
            cfg.validate()
