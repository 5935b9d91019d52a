"""NinaPro DB2/DB8 loaders on small .mat files written in the databases' layouts."""

import numpy as np
import pytest
import scipy.io

from lstmforge.data.ninapro import (
    DB2,
    DB2_GLOVE_COLUMNS,
    DB8,
    DB8_STRUCTURAL_DOA_MAP,
    find_subjects,
    load_db2,
    load_db8,
    load_doa_map,
    read_ninapro_file,
)
from lstmforge.errors import InputError


def ninapro_variables(n: int, channels: int, sensors: int, reps: int = 6, seed: int = 0) -> dict:
    """A NinaPro-like recording: `reps` repetitions of one movement separated by rest."""
    rng = np.random.default_rng(seed)
    repetition = np.zeros(n, dtype=np.int64)
    for r, block in enumerate(np.array_split(np.arange(n), reps), start=1):
        repetition[block[: len(block) * 2 // 3]] = r  # movement, then rest (0)
    return {
        "emg": rng.normal(size=(n, channels)).astype(np.float64),
        "glove": rng.uniform(0, 200, size=(n, sensors)),
        "restimulus": (repetition > 0).astype(np.uint8)[:, None],
        "rerepetition": repetition.astype(np.uint8)[:, None],
    }


def write_mat(path, variables):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)
    return path


def test_db2_loader_reads_layout_and_selects_glove_columns(tmp_path):
    variables = ninapro_variables(1200, 12, 22) | {"frequency": np.array([[2000]])}
    write_mat(tmp_path / "DB2_s1" / "S1_E1_A1.mat", variables)
    (recording,) = load_db2(tmp_path, 1)
    assert recording.fs == DB2.fs and recording.emg.shape == (1200, 12)
    np.testing.assert_allclose(
        recording.kinematics, variables["glove"][:, list(DB2_GLOVE_COLUMNS)], rtol=1e-6
    )
    np.testing.assert_array_equal(recording.repetition, variables["rerepetition"][:, 0])
    assert recording.joint_names[0] == "thumb_mcp"
    custom = load_db2(tmp_path, 1, glove_columns=(0, 21))[0]
    assert custom.joint_names == ("glove_0", "glove_21")
    assert find_subjects(tmp_path, "db2") == [1]


def test_plain_stimulus_fields_are_a_fallback(tmp_path):
    variables = ninapro_variables(300, 12, 22)
    variables["stimulus"] = variables.pop("restimulus")
    variables["repetition"] = variables.pop("rerepetition")
    raw = read_ninapro_file(write_mat(tmp_path / "S2_E1_A1.mat", variables), DB2)
    assert raw["repetition"].max() == 6


def test_db8_loader_maps_glove_to_five_doas(tmp_path):
    for a in (1, 2, 3):
        write_mat(tmp_path / f"S4_E1_A{a}.mat", ninapro_variables(500, 16, 18, seed=a))
    recordings = load_db8(tmp_path, 4)
    for a, recording in zip((1, 2, 3), recordings, strict=True):
        assert recording.source.endswith(f"S4_E1_A{a}.mat")
    glove = ninapro_variables(500, 16, 18, seed=2)["glove"]
    expected = glove @ DB8_STRUCTURAL_DOA_MAP.T
    np.testing.assert_allclose(recordings[1].kinematics, expected, rtol=1e-5)
    # hand check of the structural map: index flexion = mean of sensors 5 and 6 (1-based)
    np.testing.assert_allclose(
        recordings[1].kinematics[:, 2], glove[:, 4:6].mean(axis=1), rtol=1e-5
    )
    assert recordings[0].fs == DB8.fs and recordings[0].kinematics.shape == (500, 5)


def test_doa_map_is_a_replaceable_input(tmp_path):
    matrix = np.arange(90, dtype=float).reshape(5, 18)
    np.savetxt(tmp_path / "map.csv", matrix, delimiter=",")
    np.testing.assert_array_equal(load_doa_map(tmp_path / "map.csv"), matrix)
    np.save(tmp_path / "map.npy", matrix)
    for a in (1, 2, 3):
        write_mat(tmp_path / f"S1_E1_A{a}.mat", ninapro_variables(100, 16, 18))
    glove = ninapro_variables(100, 16, 18)["glove"]
    loaded = load_db8(tmp_path, 1, load_doa_map(tmp_path / "map.npy"))
    np.testing.assert_allclose(loaded[0].kinematics, glove @ matrix.T, rtol=1e-5)
    np.savetxt(tmp_path / "bad.csv", matrix[:, :17], delimiter=",")
    with pytest.raises(InputError, match="5 x 18"):
        load_doa_map(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda v: v.pop("glove"), "missing variable 'glove'"),
        (lambda v: v.pop("rerepetition"), "missing variable 'rerepetition' or 'repetition'"),
        (lambda v: v.update(emg=v["emg"][:, :10]), r"'emg' must be \[N, 12\], got \[600, 10\]"),
        (lambda v: v.update(glove=v["glove"][:-5]), "'glove' has 595 samples but 'emg' has 600"),
        (lambda v: v["emg"].__setitem__((3, 2), np.nan), "'emg' contains 1 NaN"),
        (lambda v: v.update(frequency=np.array([[1000]])), "'frequency' is 1000 Hz"),
        (lambda v: v.update(emg=np.array([["a"] * 12] * 600)), "must be numeric"),
        (lambda v: v.update(frequency=np.zeros((0, 0))), "'frequency' must be one number"),
        (lambda v: v.update(rerepetition=np.array(["x"] * 600)), "'rerepetition' must be numeric"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path, change, match):
    variables = ninapro_variables(600, 12, 22)
    change(variables)
    path = write_mat(tmp_path / "S1_E1_A1.mat", variables)
    with pytest.raises(InputError, match=match) as err:
        read_ninapro_file(path, DB2)
    assert "S1_E1_A1.mat" in str(err.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="S9_E1_A1.mat: NinaPro .mat file not found"):
        load_db2(tmp_path, 9)
    corrupt = tmp_path / "S1_E1_A1.mat"
    corrupt.write_bytes(b"MATLAB 5.0 MAT-file, truncated" + bytes(20))
    with pytest.raises(InputError, match="not a readable .mat file"):
        read_ninapro_file(corrupt, DB2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NinaPro DB8 files"):
        find_subjects(tmp_path / "empty", "db8")
    with pytest.raises(InputError, match="data directory not found"):
        find_subjects(tmp_path / "absent", "db2")


def test_db8_protocol_trains_on_a1_a2_and_tests_on_a3(tmp_path):
    from lstmforge.data.emg_splits import TEST, TRAIN, VAL
    from lstmforge.tasks.emg.dataset import EMGDataConfig, build_features

    for a in (1, 2, 3):
        write_mat(tmp_path / f"S5_E1_A{a}.mat", ninapro_variables(3000, 16, 18, seed=a))
    (subject,) = build_features(EMGDataConfig(dataset="ninapro-db8"), tmp_path)
    a1, a2, a3 = (set(np.unique(r.split).tolist()) for r in subject.recordings)
    assert a1 == {TRAIN} and a2 == {TRAIN, VAL} and a3 == {TEST}
    # validation is A2's last repetition: the final sixth of the recording
    val_frames = np.flatnonzero(subject.recordings[1].split == VAL)
    assert val_frames.min() > 0.8 * subject.recordings[1].split.size
    assert (
        subject.recordings[0].frames.shape[1] == 16 and subject.joint_names[0] == "thumb_rotation"
    )


def test_db2_dataset_needs_data_dir_and_test_repetitions(tmp_path):
    from lstmforge.tasks.emg.dataset import EMGDataConfig, build_features

    cfg = EMGDataConfig(dataset="ninapro-db2")
    with pytest.raises(InputError, match="--data DIR is required"):
        build_features(cfg, None)
    variables = ninapro_variables(6000, 12, 22, reps=4)  # repetitions 1-4, relabel 2 as 1
    variables["rerepetition"][variables["rerepetition"] == 2] = 1
    write_mat(tmp_path / "S1_E1_A1.mat", variables)
    with pytest.raises(InputError, match="S1_E1_A1.mat: no test repetitions"):
        build_features(cfg, tmp_path)


def test_db8_acquisition_2_without_repetition_labels_is_refused(tmp_path):
    from lstmforge.tasks.emg.dataset import EMGDataConfig, build_features

    for a in (1, 2, 3):
        variables = ninapro_variables(3000, 16, 18, seed=a)
        if a == 2:
            variables["rerepetition"][:] = 0
        write_mat(tmp_path / f"S5_E1_A{a}.mat", variables)
    with pytest.raises(InputError, match="acquisition 2 has no repetition labels"):
        build_features(EMGDataConfig(dataset="ninapro-db8"), tmp_path)


def test_a_doa_map_that_is_not_one_numeric_array_is_refused(tmp_path):
    np.save(tmp_path / "words.npy", np.array([["a"] * 18] * 5))
    with pytest.raises(InputError, match="one numeric array"):
        load_doa_map(tmp_path / "words.npy")
    with open(tmp_path / "archive.npy", "wb") as fh:
        np.savez(fh, a=np.zeros((5, 18)))
    with pytest.raises(InputError, match="one numeric array"):
        load_doa_map(tmp_path / "archive.npy")
