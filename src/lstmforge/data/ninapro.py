"""Loaders for NinaPro DB2 and DB8 ``.mat`` files, with every field validated.

Layouts (ninapro.hevs.ch; Atzori et al., Sci. Data 1, 140053, 2014; Krasoulis et al.,
Front. Neurosci. 13, 891, 2019):

* **DB2**: one file per subject and exercise, ``S{n}_E{e}_A1.mat``, with ``emg`` [N, 12]
  (Delsys Trigno, 2 kHz), ``glove`` [N, 22] (CyberGlove II, uncalibrated, proportional to the
  joint angles), ``restimulus`` and ``rerepetition`` [N, 1] (the relabelled movement and
  repetition, 0 = rest).
* **DB8**: ``S{n}_E1_A{1,2,3}.mat`` (three acquisitions of one exercise), ``emg`` [N, 16]
  (Delsys Trigno, 1111 Hz; the glove is resampled to the EMG clock), ``glove`` [N, 18]
  (CyberGlove 18 sensors), ``restimulus``/``rerepetition``.

When a file has no relabelled fields, ``stimulus``/``repetition`` are used. A ``frequency``
variable, when present, must equal the database's rate. Files saved as MATLAB v7.3 (HDF5) are
read with h5py.

**Kinematic targets.** DB2: ten glove columns, :data:`DB2_GLOVE_COLUMNS` — the MCP and
PIP sensors of the four fingers and the thumb's MCP and IP sensors, assuming the CyberGlove II
22-sensor order (1 thumb rotation, 2 thumb MCP, 3 thumb IP, 4 thumb abduction, 5-7 index
MCP/PIP/DIP, 8-10 middle MCP/PIP/DIP, 11 middle-index abduction, 12-14 ring, 15 ring-middle
abduction, 16-18 little, 19 little-ring abduction, 20 palm arch, 21-22 wrist). This is our
choice; pass ``glove_columns`` to use another. DB8: the 18 glove sensors are mapped linearly to
five degrees of actuation (thumb rotation, thumb / index / middle flexion, ring+little
flexion) following Krasoulis et al. (2019). The published matrix is not reproduced here: the
default :data:`DB8_STRUCTURAL_DOA_MAP` averages the flexion sensors of each digit (assuming the
CyberGlove 18-sensor order 1 thumb rotation, 2 thumb MCP, 3 thumb IP, 4 thumb abduction,
5-6 index MCP/PIP, 7-8 middle MCP/PIP, 9 middle-index abduction, 10-11 ring MCP/PIP,
12 ring-middle abduction, 13-14 little MCP/PIP, 15 little-ring abduction, 16 palm arch,
17-18 wrist). Supply the published matrix (5 × 18) with ``doa_map`` / ``--doa-map`` for
results comparable with that paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from lstmforge.data.emg_recording import EMGRecording
from lstmforge.errors import InputError

# 0-based glove columns of the ten DB2 targets (see the module docstring)
DB2_GLOVE_COLUMNS = (1, 2, 4, 5, 7, 8, 11, 12, 15, 16)
DB2_JOINT_NAMES = (
    "thumb_mcp",
    "thumb_ip",
    "index_mcp",
    "index_pip",
    "middle_mcp",
    "middle_pip",
    "ring_mcp",
    "ring_pip",
    "little_mcp",
    "little_pip",
)
DB8_DOA_NAMES = (
    "thumb_rotation",
    "thumb_flexion",
    "index_flexion",
    "middle_flexion",
    "ring_little_flexion",
)


def _structural_doa_map() -> np.ndarray:
    digits = ((0,), (1, 2), (4, 5), (6, 7), (9, 10, 12, 13))
    matrix = np.zeros((5, 18))
    for row, sensors in enumerate(digits):
        matrix[row, list(sensors)] = 1.0 / len(sensors)
    return matrix


# our stand-in for the Krasoulis et al. (2019) map, NOT the published numbers (docstring)
DB8_STRUCTURAL_DOA_MAP = _structural_doa_map()


@dataclass(frozen=True)
class NinaproLayout:
    """What one database's files must contain."""

    name: str
    emg_channels: int
    glove_sensors: int
    fs: float


DB2 = NinaproLayout("DB2", emg_channels=12, glove_sensors=22, fs=2000.0)
DB8 = NinaproLayout("DB8", emg_channels=16, glove_sensors=18, fs=1111.0)


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    """All variables of a .mat file (v5 via scipy, v7.3 via h5py)."""
    if not path.is_file():
        raise InputError(f"{path}: NinaPro .mat file not found")
    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            with h5py.File(path, "r") as f:
                return {k: np.asarray(f[k]).T for k in f if isinstance(f[k], h5py.Dataset)}
        except OSError as err:
            raise InputError(f"{path}: not a readable .mat file ({err})") from None
    except (ValueError, TypeError, OSError, IndexError, EOFError, MatReadError) as err:
        raise InputError(f"{path}: not a readable .mat file ({err})") from None


def _column(variables: dict[str, np.ndarray], names: tuple[str, ...], path: Path) -> np.ndarray:
    for name in names:
        if name in variables:
            values = np.asarray(variables[name])
            if not np.issubdtype(values.dtype, np.number):
                raise InputError(f"{path}: '{name}' must be numeric, got dtype {values.dtype}")
            if values.ndim == 2 and 1 in values.shape:
                values = values.reshape(-1)
            if values.ndim != 1:
                raise InputError(f"{path}: '{name}' must be a column vector, got {values.shape}")
            if not np.all(np.isfinite(values)):
                raise InputError(f"{path}: '{name}' contains NaN or infinite values")
            return np.rint(values).astype(np.int64)
    raise InputError(f"{path}: missing variable {' or '.join(repr(n) for n in names)}")


def _matrix(variables: dict[str, np.ndarray], name: str, columns: int, path: Path) -> np.ndarray:
    if name not in variables:
        raise InputError(f"{path}: missing variable '{name}'")
    values = np.asarray(variables[name])
    if values.ndim != 2 or values.shape[1] != columns:
        raise InputError(f"{path}: '{name}' must be [N, {columns}], got {list(values.shape)}")
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path}: '{name}' must be numeric, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise InputError(f"{path}: '{name}' contains {bad} NaN or infinite values")
    return values.astype(np.float32)


def read_ninapro_file(path: str | Path, layout: NinaproLayout) -> dict[str, np.ndarray]:
    """Validated ``emg``, ``glove``, ``stimulus``, ``repetition`` arrays and ``fs`` of one file."""
    path = Path(path)
    variables = _read_mat(path)
    emg = _matrix(variables, "emg", layout.emg_channels, path)
    glove = _matrix(variables, "glove", layout.glove_sensors, path)
    stimulus = _column(variables, ("restimulus", "stimulus"), path)
    repetition = _column(variables, ("rerepetition", "repetition"), path)
    for name, values in (("glove", glove), ("restimulus", stimulus), ("rerepetition", repetition)):
        if values.shape[0] != emg.shape[0]:
            raise InputError(
                f"{path}: '{name}' has {values.shape[0]} samples but 'emg' has {emg.shape[0]}"
            )
    if "frequency" in variables:
        frequency = np.asarray(variables["frequency"]).reshape(-1)
        if frequency.size != 1 or not np.issubdtype(frequency.dtype, np.number):
            raise InputError(f"{path}: 'frequency' must be one number, got {frequency!r}")
        fs = float(frequency[0])
        if abs(fs - layout.fs) > 1.0:
            raise InputError(
                f"{path}: 'frequency' is {fs:g} Hz, {layout.name} is sampled at {layout.fs:g} Hz"
            )
    return {"emg": emg, "glove": glove, "stimulus": stimulus, "repetition": repetition}


def load_doa_map(path: str | Path) -> np.ndarray:
    """A 5 × 18 glove-to-DoA matrix from ``.npy`` or a text/CSV file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: DoA map file not found")
    try:
        matrix = (
            np.load(path, allow_pickle=False)
            if path.suffix == ".npy"
            else np.loadtxt(path, delimiter=",")
        )
    except (ValueError, OSError) as err:
        raise InputError(f"{path}: not a numeric matrix ({err})") from None
    if not isinstance(matrix, np.ndarray) or not np.issubdtype(matrix.dtype, np.number):
        raise InputError(f"{path}: DoA map must be one numeric array")
    if matrix.shape != (5, 18) or not np.all(np.isfinite(matrix)):
        raise InputError(f"{path}: DoA map must be a finite 5 x 18 matrix, got {matrix.shape}")
    return matrix


def db2_file(data_dir: Path, subject: int, exercise: int) -> Path:
    """Where ``S{subject}_E{exercise}_A1.mat`` is under ``data_dir`` (searched recursively)."""
    name = f"S{subject}_E{exercise}_A1.mat"
    found = sorted(Path(data_dir).rglob(name))
    return found[0] if found else Path(data_dir) / name


def db8_file(data_dir: Path, subject: int, acquisition: int) -> Path:
    """Where ``S{subject}_E1_A{acquisition}.mat`` is under ``data_dir`` (searched recursively)."""
    name = f"S{subject}_E1_A{acquisition}.mat"
    found = sorted(Path(data_dir).rglob(name))
    return found[0] if found else Path(data_dir) / name


def load_db2(
    data_dir: str | Path,
    subject: int,
    exercises: tuple[int, ...] = (1,),
    glove_columns: tuple[int, ...] = DB2_GLOVE_COLUMNS,
) -> list[EMGRecording]:
    """One recording per exercise file of a DB2 subject; targets are ``glove_columns``."""
    if any(not 0 <= c < DB2.glove_sensors for c in glove_columns):
        raise InputError(
            f"glove_columns must lie in 0..{DB2.glove_sensors - 1}, got {glove_columns}"
        )
    names = (
        DB2_JOINT_NAMES
        if tuple(glove_columns) == DB2_GLOVE_COLUMNS
        else tuple(f"glove_{c}" for c in glove_columns)
    )
    recordings = []
    for exercise in exercises:
        path = db2_file(Path(data_dir), subject, exercise)
        raw = read_ninapro_file(path, DB2)
        recordings.append(
            EMGRecording(
                emg=raw["emg"],
                kinematics=raw["glove"][:, list(glove_columns)],
                stimulus=raw["stimulus"],
                repetition=raw["repetition"],
                fs=DB2.fs,
                joint_names=names,
                source=str(path),
            )
        )
    return recordings


def load_db8(
    data_dir: str | Path, subject: int, doa_map: np.ndarray = DB8_STRUCTURAL_DOA_MAP
) -> list[EMGRecording]:
    """The three acquisitions A1, A2, A3 of a DB8 subject; targets are ``glove @ doa_map.T``."""
    if doa_map.shape != (5, DB8.glove_sensors):
        raise InputError(f"doa_map must be 5 x {DB8.glove_sensors}, got {doa_map.shape}")
    recordings = []
    for acquisition in (1, 2, 3):
        path = db8_file(Path(data_dir), subject, acquisition)
        raw = read_ninapro_file(path, DB8)
        recordings.append(
            EMGRecording(
                emg=raw["emg"],
                kinematics=(raw["glove"] @ doa_map.T).astype(np.float32),
                stimulus=raw["stimulus"],
                repetition=raw["repetition"],
                fs=DB8.fs,
                joint_names=DB8_DOA_NAMES,
                source=str(path),
            )
        )
    return recordings


def find_subjects(data_dir: str | Path, database: str) -> list[int]:
    """Subject numbers with files under ``data_dir`` (``database`` is 'db2' or 'db8')."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: NinaPro data directory not found")
    pattern = "S*_E*_A1.mat" if database == "db2" else "S*_E1_A1.mat"
    subjects = set()
    for path in data_dir.rglob(pattern):
        head = path.name.split("_")[0][1:]
        if head.isdigit():
            subjects.add(int(head))
    if not subjects:
        raise InputError(f"{data_dir}: no NinaPro {database.upper()} files ({pattern}) found")
    return sorted(subjects)
