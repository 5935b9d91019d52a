"""Synthetic forearm sEMG with known finger kinematics (NinaPro-like protocol).

The generative model, stage by stage (every random draw comes from one seeded generator, so a
seed fixes the whole data set):

1. **Kinematics.** Ten joint angles (:data:`JOINT_NAMES`, degrees). Each movement of
   :data:`MOVEMENTS` is a target posture (fraction of each joint's range); single-finger
   flexions include the enslaving of neighbouring fingers (Zatsiorsky et al., 2000). A
   repetition is rest → minimum-jerk ramp (Flash & Hogan, 1985) → hold → ramp back → rest,
   with jittered durations and amplitude. As in NinaPro, each movement is repeated
   ``n_repetitions`` times before the next one; the labels follow NinaPro's ``stimulus`` /
   ``repetition`` (0 = rest).
2. **Muscle activations.** Twelve muscles (:data:`MUSCLES`): a flexor and an extensor per
   digit, a thumb abductor/opposer and a wrist stabiliser. A flexor's drive has a phasic part
   that follows its digit's flexion velocity (the agonist burst that moves the finger) and a
   weaker tonic part that holds the posture, scaled by an effort that varies from repetition
   to repetition (0.5-1.5: an unloaded finger can be held with more or less stiffness). An
   extensor's drive follows extension velocity plus a subject-specific co-contraction
   fraction of its antagonist; the stabiliser follows the overall grip effort. Because the
   instantaneous EMG amplitude says more about movement than about posture, the joint angle
   must be inferred from the history of the signal — the setting memory models are meant
   for. Drives pass through first-order activation dynamics (time constant
   ~40 ms) and lead the kinematics by an electromechanical delay of ~50-80 ms (Cavanagh &
   Komi, 1979): EMG at time t reflects the posture at t + delay.
3. **Muscle sEMG.** Activation-modulated band-limited Gaussian noise (the interference pattern
   of many motor units; De Luca, 1979): white noise through a 2nd-order band-pass whose centre
   varies per muscle (60-140 Hz), times the activation, plus a small tonic floor.
4. **Volume conduction.** A circular forearm cross-section: ``n_electrodes`` (12 as in DB2,
   16 as in DB8) equally spaced on the skin, the muscles at anatomical angles and depths.
   The gain from muscle m to electrode e decays with their distance d as
   ``(1 + (d/λ)^2)^-1.5`` (a dipole-like fall-off); λ (tissue/fat spread) and the angular
   placement of the armband differ per subject, and muscle positions are jittered per
   subject — so every subject has a different mixing matrix and neighbouring electrodes see
   crosstalk from the same muscles.
5. **Measurement.** White amplifier noise, power-line interference at 50 Hz and 150 Hz with a
   random amplitude and phase per channel, and a slow baseline wander.

6. **Sessions and non-stationarity** (all off in the ``clean`` preset, the default; see
   :data:`PRESETS`). A subject can be recorded in ``n_sessions`` sessions: the anatomy
   (range of motion, co-contraction, delay, muscle spectra and positions, tissue spread) is
   the subject's, while each session has new movements, noise and the effects below, each
   drawn from its own seeded stream (so ``clean`` data are exactly those of earlier versions):

   * *electrode shift* — the armband is put on again each session, rotated around the
     forearm by a uniform fraction of the inter-electrode spacing in
     ``±electrode_shift`` (Hargrove et al., Biomed. Signal Process. Control 3, 175-180, 2008;
     Young et al., IEEE Trans. Biomed. Eng. 58, 2537-2544, 2011: ~1 cm shifts, about half the
     spacing of 12 electrodes on a 25 cm forearm);
   * *skin-electrode gain* — a per-channel log-gain drawn at each donning (standard deviation
     ``gain_drift``) that then drifts as a random walk over the session (knots every 5 s,
     linearly interpolated, standard deviation ``gain_drift`` at the session's end): sweat
     and impedance changes (Scheme & Englehart, J. Rehabil. Res. Dev. 48, 643-660, 2011);
   * *muscle fatigue* — each muscle's fatigue index is its cumulative activation over the
     session (0 → 1); with weight ``w = fatigue × index`` its source fades towards band noise
     centred 40 % lower (median frequency falls) and its amplitude grows by ``1 + w``
     (De Luca, Crit. Rev. Biomed. Eng. 11, 251-279, 1984);
   * *motor-unit recruitment noise* — at low force few motor units are active (Henneman et
     al., Science 126, 1345-1347, 1957; Fuglevand et al., J. Neurophysiol. 70, 2470-2488,
     1993), so the sEMG amplitude fluctuates around the drive: activation ×
     ``exp(σz − σ²/2)`` with ``z`` unit Gaussian noise low-passed at 5 Hz and
     ``σ = recruitment_noise · sqrt(0.1 / (a + 0.1))``, largest near rest.

This is a deliberately simple, documented model, not a physiological simulator: what matters
for the task is that the map from EMG to kinematics is non-linear (rectification, velocity
terms, co-contraction), delayed, subject-specific and corrupted the way real recordings are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from lstmforge.data.emg_recording import EMGRecording
from lstmforge.errors import InputError

JOINT_NAMES = (
    "thumb_rotation",
    "thumb_flexion",
    "index_mcp",
    "index_pip",
    "middle_mcp",
    "middle_pip",
    "ring_mcp",
    "ring_pip",
    "little_mcp",
    "little_pip",
)
# joint range of motion in degrees, same order as JOINT_NAMES
JOINT_RANGE_DEG = np.array([60, 55, 90, 100, 90, 100, 90, 100, 90, 100], dtype=np.float64)
# which joints belong to which digit (thumb, index, middle, ring, little)
DIGIT_JOINTS = ((1,), (2, 3), (4, 5), (6, 7), (8, 9))

# target postures as fractions of each joint's range (JOINT_NAMES order)
MOVEMENTS: dict[str, tuple[float, ...]] = {
    "thumb_flexion": (0.3, 1.0, 0, 0, 0, 0, 0, 0, 0, 0),
    "thumb_opposition": (1.0, 0.4, 0, 0, 0, 0, 0, 0, 0, 0),
    "index_flexion": (0, 0.05, 1.0, 0.8, 0.2, 0.15, 0.05, 0.05, 0, 0),
    "middle_flexion": (0, 0, 0.2, 0.15, 1.0, 0.8, 0.3, 0.25, 0.05, 0.05),
    "ring_flexion": (0, 0, 0.05, 0.05, 0.3, 0.25, 1.0, 0.8, 0.4, 0.3),
    "little_flexion": (0, 0, 0, 0, 0.05, 0.05, 0.35, 0.3, 1.0, 0.8),
    "power_grasp": (0.6, 0.7, 0.9, 0.9, 0.9, 0.95, 0.9, 0.95, 0.85, 0.9),
    "pinch": (0.8, 0.5, 0.6, 0.55, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05),
    "tripod": (0.7, 0.5, 0.55, 0.5, 0.55, 0.5, 0.15, 0.1, 0.1, 0.1),
}

# (name, angle on the cross-section in degrees [0 = dorsal], relative depth 0..1)
MUSCLES = (
    ("flexor_pollicis_longus", 235.0, 0.65),
    ("flexor_index", 200.0, 0.35),
    ("flexor_middle", 185.0, 0.45),
    ("flexor_ring", 165.0, 0.4),
    ("flexor_little", 145.0, 0.35),
    ("extensor_pollicis", 300.0, 0.45),
    ("extensor_index", 330.0, 0.4),
    ("extensor_middle", 0.0, 0.3),
    ("extensor_ring", 25.0, 0.3),
    ("extensor_little", 50.0, 0.35),
    ("abductor_pollicis", 275.0, 0.3),
    ("wrist_stabiliser", 100.0, 0.25),
)


# magnitudes of the stage-6 effects per preset (SyntheticEMGConfig fields)
PRESETS: dict[str, dict[str, float]] = {
    "clean": {"electrode_shift": 0.0, "gain_drift": 0.0, "fatigue": 0.0, "recruitment_noise": 0.0},
    "realistic": {
        "electrode_shift": 0.5,
        "gain_drift": 0.2,
        "fatigue": 0.3,
        "recruitment_noise": 0.3,
    },
}


def preset(name: str) -> dict[str, float]:
    """The stage-6 effect magnitudes of preset ``name`` (:data:`PRESETS`)."""
    if name not in PRESETS:
        raise InputError(f"synthetic preset must be one of {', '.join(PRESETS)}, got {name!r}")
    return dict(PRESETS[name])


@dataclass(frozen=True)
class SyntheticEMGConfig:
    """Size and protocol of the synthetic data set (see the module docstring for the model)."""

    n_subjects: int = 5
    n_electrodes: int = 12
    n_repetitions: int = 6
    movements: tuple[str, ...] = tuple(MOVEMENTS)
    fs: float = 2000.0
    rest_s: float = 1.5
    hold_s: float = 1.5
    ramp_s: float = 0.6
    noise_level: float = 0.03
    powerline_hz: float = 50.0
    seed: int = 0
    n_sessions: int = 1
    electrode_shift: float = 0.0
    gain_drift: float = 0.0
    fatigue: float = 0.0
    recruitment_noise: float = 0.0

    def validate(self) -> None:
        """Reject impossible settings, naming the field."""
        if self.n_subjects < 1:
            raise InputError(f"n_subjects must be >= 1, got {self.n_subjects}")
        if self.n_electrodes < 4:
            raise InputError(f"n_electrodes must be >= 4, got {self.n_electrodes}")
        if self.n_repetitions < 1:
            raise InputError(f"n_repetitions must be >= 1, got {self.n_repetitions}")
        if self.n_sessions < 1:
            raise InputError(f"n_sessions must be >= 1, got {self.n_sessions}")
        unknown = [m for m in self.movements if m not in MOVEMENTS]
        if unknown or not self.movements:
            raise InputError(f"movements must be a non-empty subset of {list(MOVEMENTS)}")
        if self.fs < 1000:
            raise InputError(f"fs must be >= 1000 Hz for sEMG, got {self.fs}")
        if min(self.rest_s, self.hold_s, self.ramp_s) <= 0:
            raise InputError("rest_s, hold_s and ramp_s must be positive")
        for name in PRESETS["clean"]:
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.fatigue > 1:
            raise InputError(f"fatigue must be in [0, 1], got {self.fatigue}")


def minimum_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile s(τ) = 10τ³ − 15τ⁴ + 6τ⁵ on τ ∈ [0, 1] (Flash & Hogan, 1985)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)


def movement_trajectories(
    cfg: SyntheticEMGConfig, rng: np.random.Generator, amplitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Joint angles [N, 10] in degrees, ``stimulus``, ``repetition`` and ``effort`` [N].

    ``amplitude`` [10] is the subject's fraction of the nominal range of motion; ``effort`` is
    the tonic holding effort of each repetition (stage 2).
    """
    angles, stimulus, repetition, effort = [], [], [], []
    for m, name in enumerate(cfg.movements, start=1):
        posture = np.asarray(MOVEMENTS[name]) * JOINT_RANGE_DEG * amplitude
        for rep in range(1, cfg.n_repetitions + 1):
            jitter = rng.uniform(0.8, 1.2, size=4)
            rest_a, ramp, hold, rest_b = (
                cfg.rest_s / 2 * jitter[0],
                cfg.ramp_s * jitter[1],
                cfg.hold_s * jitter[2],
                cfg.rest_s / 2 * jitter[3],
            )
            n = [int(round(d * cfg.fs)) for d in (rest_a, ramp, hold, ramp, rest_b)]
            level = np.concatenate(
                [
                    np.zeros(n[0]),
                    minimum_jerk(np.arange(n[1]) / n[1]),
                    np.ones(n[2]),
                    1.0 - minimum_jerk(np.arange(n[3]) / n[3]),
                    np.zeros(n[4]),
                ]
            )
            scale = posture * rng.uniform(0.85, 1.05)
            angles.append(level[:, None] * scale[None, :])
            active = np.zeros(level.size, dtype=np.int64)
            active[n[0] : n[0] + n[1] + n[2] + n[3]] = 1
            stimulus.append(active * m)
            repetition.append(active * rep)
            effort.append(np.full(level.size, rng.uniform(0.5, 1.5)))
    return tuple(np.concatenate(a) for a in (angles, stimulus, repetition, effort))


def muscle_activations(
    angles: np.ndarray, effort: np.ndarray, fs: float, cocontraction: float, delay_s: float
) -> np.ndarray:
    """Activations [N, 12] in 0..1 from joint angles [N, 10] and effort [N] (stage 2)."""
    flexion = np.stack(
        [angles[:, list(j)].mean(axis=1) / JOINT_RANGE_DEG[list(j)].mean() for j in DIGIT_JOINTS],
        axis=1,
    )  # [N, 5] in 0..1
    velocity = np.gradient(flexion, axis=0) * fs  # range fractions per second
    rotation = angles[:, 0] / JOINT_RANGE_DEG[0]
    tonic = 0.2 * effort[:, None]
    flexors = tonic * flexion + 0.3 * np.maximum(velocity, 0.0)
    extensors = 0.3 * np.maximum(-velocity, 0.0) + cocontraction * flexors
    abductor = tonic[:, 0] * rotation + 0.3 * np.maximum(np.gradient(rotation) * fs, 0.0)
    stabiliser = 0.5 * flexors.mean(axis=1)
    drive = np.concatenate([flexors, extensors, abductor[:, None], stabiliser[:, None]], axis=1)
    # electromechanical delay: EMG at t reflects the drive for the posture at t + delay
    shift = int(round(delay_s * fs))
    drive = np.concatenate([drive[shift:], np.repeat(drive[-1:], shift, axis=0)])
    # first-order activation dynamics, tau = 40 ms
    alpha = 1.0 - np.exp(-1.0 / (0.04 * fs))
    activation = signal.lfilter([alpha], [1.0, alpha - 1.0], drive, axis=0)
    return np.clip(activation, 0.0, 1.0)


@dataclass(frozen=True)
class ForearmGeometry:
    """One subject's forearm (stage 4): armband angle, tissue spread, muscle places and gains."""

    band_offset: float
    spread: float
    muscle_angle: np.ndarray
    muscle_radius: np.ndarray
    muscle_gain: np.ndarray


def draw_geometry(rng: np.random.Generator) -> ForearmGeometry:
    """A random subject's :class:`ForearmGeometry`."""
    return ForearmGeometry(
        band_offset=np.deg2rad(rng.uniform(-20.0, 20.0)),
        spread=rng.uniform(0.35, 0.6),
        muscle_angle=np.deg2rad(
            np.array([m[1] for m in MUSCLES]) + rng.normal(0.0, 8.0, len(MUSCLES))
        ),
        muscle_radius=1.0 - np.array([m[2] for m in MUSCLES]) * rng.uniform(0.9, 1.1, len(MUSCLES)),
        muscle_gain=rng.uniform(0.7, 1.3, size=len(MUSCLES)),
    )


def mixing_matrix(n_electrodes: int, geometry: ForearmGeometry, shift: float = 0.0) -> np.ndarray:
    """Volume-conduction gains [n_electrodes, 12] (stage 4), the armband rotated by ``shift``
    inter-electrode spacings (stage 6)."""
    spacing = 2.0 * np.pi / n_electrodes
    theta_e = spacing * np.arange(n_electrodes) + geometry.band_offset + shift * spacing
    angle_m, radius_m = geometry.muscle_angle, geometry.muscle_radius
    electrodes = np.stack([np.cos(theta_e), np.sin(theta_e)], axis=1)
    muscles = np.stack([radius_m * np.cos(angle_m), radius_m * np.sin(angle_m)], axis=1)
    distance = np.linalg.norm(electrodes[:, None, :] - muscles[None, :, :], axis=2)
    gain = (1.0 + (distance / geometry.spread) ** 2) ** -1.5
    return gain * geometry.muscle_gain[None, :]


def band_sos(centre: float, fs: float) -> np.ndarray:
    """The 2nd-order band-pass [centre/2, 2·centre] that shapes a muscle's spectrum (stage 3)."""
    return signal.butter(2, [centre / 2.0, centre * 2.0], btype="bandpass", fs=fs, output="sos")


def muscle_sources(
    n: int, fs: float, rng: np.random.Generator, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance band-limited noise [n, 12] and the centre frequencies [12] (stage 3).

    ``centres`` are the subject's; ``None`` draws them (the subject's first session).
    """
    m = len(MUSCLES)
    sources = np.empty((n, m))
    drawn = np.empty(m)
    for k in range(m):
        drawn[k] = rng.uniform(60.0, 140.0) if centres is None else centres[k]
        sources[:, k] = signal.sosfilt(band_sos(drawn[k], fs), rng.standard_normal(n))
    sources /= sources.std(axis=0, keepdims=True)
    return sources, drawn


def fatigued(
    sources: np.ndarray,
    activation: np.ndarray,
    centres: np.ndarray,
    fatigue: float,
    fs: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sources [N, 12] with fatigue's spectral compression and amplitude growth (stage 6)."""
    if fatigue == 0:
        return sources
    n = sources.shape[0]
    slow = np.stack(
        [signal.sosfilt(band_sos(0.6 * c, fs), rng.standard_normal(n)) for c in centres], axis=1
    )
    slow /= slow.std(axis=0, keepdims=True)
    work = np.cumsum(activation, axis=0)
    w = fatigue * work / np.maximum(work[-1], 1e-12)
    return ((1.0 - w) * sources + w * slow) / np.sqrt((1.0 - w) ** 2 + w**2) * (1.0 + w)


def recruitment_fluctuation(
    activation: np.ndarray, level: float, fs: float, rng: np.random.Generator
) -> np.ndarray:
    """Activation [N, 12] times log-normal motor-unit recruitment noise, larger at low force
    (stage 6)."""
    if level == 0:
        return activation
    sos = signal.butter(2, 5.0, fs=fs, output="sos")
    z = signal.sosfilt(sos, rng.standard_normal(activation.shape), axis=0)
    z /= z.std(axis=0, keepdims=True)
    sigma = level * np.sqrt(0.1 / (activation + 0.1))
    return activation * np.exp(sigma * z - sigma**2 / 2.0)


def electrode_gains(
    n: int, n_electrodes: int, fs: float, drift: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-channel skin-electrode gains [n, n_electrodes]: a donning offset plus a random walk
    over the session, both of log standard deviation ``drift`` (stage 6)."""
    knots = np.arange(0.0, n + 5.0 * fs, 5.0 * fs)
    steps = rng.normal(0.0, drift * np.sqrt(5.0 * fs / n), size=(knots.size, n_electrodes))
    steps[0] = rng.normal(0.0, drift, size=n_electrodes)
    walk = np.cumsum(steps, axis=0)
    t = np.arange(n)
    return np.exp(np.stack([np.interp(t, knots, walk[:, c]) for c in range(n_electrodes)], 1))


@dataclass(frozen=True)
class SubjectAnatomy:
    """What stays the same across a subject's sessions (stages 1-4)."""

    amplitude: np.ndarray
    cocontraction: float
    delay_s: float
    centres: np.ndarray
    geometry: ForearmGeometry


def record_session(
    cfg: SyntheticEMGConfig,
    subject: int,
    session: int,
    anatomy: SubjectAnatomy,
    kinematics: tuple[np.ndarray, ...],
    sources: np.ndarray,
    rng: np.random.Generator,
) -> EMGRecording:
    """Stages 2-6 of one session: activations, sEMG, volume conduction, measurement."""
    angles, stimulus, repetition, effort = kinematics
    effects = np.random.default_rng([cfg.seed, subject, session, 6])  # stage 6 only
    activation = muscle_activations(angles, effort, cfg.fs, anatomy.cocontraction, anatomy.delay_s)
    sources = fatigued(sources, activation, anatomy.centres, cfg.fatigue, cfg.fs, effects)
    drive = recruitment_fluctuation(activation, cfg.recruitment_noise, cfg.fs, effects)
    shift = cfg.electrode_shift * effects.uniform(-1.0, 1.0)
    emg = (sources * (drive + 0.02)) @ mixing_matrix(cfg.n_electrodes, anatomy.geometry, shift).T
    n = emg.shape[0]
    emg *= electrode_gains(n, cfg.n_electrodes, cfg.fs, cfg.gain_drift, effects)
    t = np.arange(n) / cfg.fs
    scale = emg.std()
    for harmonic, amp in ((1, 0.3), (3, 0.1)):
        a = amp * scale * rng.uniform(0.3, 1.0, size=cfg.n_electrodes)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=cfg.n_electrodes)
        emg += a * np.sin(2.0 * np.pi * harmonic * cfg.powerline_hz * t[:, None] + phase)
    wander = rng.uniform(0.1, 0.5, size=cfg.n_electrodes)
    emg += 0.2 * scale * np.sin(2.0 * np.pi * wander * t[:, None] + rng.uniform(0, 6.3))
    emg += cfg.noise_level * scale * rng.standard_normal(emg.shape)
    return EMGRecording(
        emg=emg.astype(np.float32),
        kinematics=angles.astype(np.float32),
        stimulus=stimulus,
        repetition=repetition,
        fs=cfg.fs,
        joint_names=JOINT_NAMES,
        source=f"synthetic subject {subject} session {session} (seed {cfg.seed})",
    )


def generate_subject(cfg: SyntheticEMGConfig, subject: int) -> list[EMGRecording]:
    """The continuous recordings of one synthetic subject, one per session (both count
    from 1). The first session draws the subject's anatomy; later sessions reuse it."""
    cfg.validate()
    rng = np.random.default_rng([cfg.seed, subject])
    amplitude = rng.uniform(0.8, 1.0, size=len(JOINT_NAMES))
    kinematics = movement_trajectories(cfg, rng, amplitude)
    cocontraction, delay_s = rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.08)
    sources, centres = muscle_sources(kinematics[0].shape[0], cfg.fs, rng)
    anatomy = SubjectAnatomy(amplitude, cocontraction, delay_s, centres, draw_geometry(rng))
    recordings = [record_session(cfg, subject, 1, anatomy, kinematics, sources, rng)]
    for session in range(2, cfg.n_sessions + 1):
        rng = np.random.default_rng([cfg.seed, subject, session])
        kinematics = movement_trajectories(cfg, rng, amplitude)
        sources, _ = muscle_sources(kinematics[0].shape[0], cfg.fs, rng, centres)
        recordings.append(record_session(cfg, subject, session, anatomy, kinematics, sources, rng))
    return recordings


def generate_dataset(cfg: SyntheticEMGConfig) -> dict[int, list[EMGRecording]]:
    """All subjects: ``{subject: [recording per session]}``."""
    cfg.validate()
    return {s: generate_subject(cfg, s) for s in range(1, cfg.n_subjects + 1)}
