"""A synthetic radar-echo generator that behaves like real precipitation fields.

Each sequence is built on a latent Gaussian field on a periodic domain larger than the frame
(so rain flows in from outside), then cropped:

* **spatial structure**: the latent field has a power-law power spectrum ``P(k) ~ |k|^-beta``
  with ``beta = 3`` (radar rain fields are close to this; Seed et al., J. Appl. Meteor. 2003;
  the basis of pysteps' STEPS/S-PROG);
* **motion**: smooth semi-Lagrangian advection by a velocity field that is a uniform mean
  motion plus a large-scale perturbation, varying slowly in time (linear blend of two fields);
* **evolution**: in the Lagrangian frame each spatial scale decorrelates as an AR(1) process
  with a lifetime proportional to the scale (small cells live a few frames, large systems
  hours; Germann & Zawadzki, Mon. Wea. Rev. 2002), which keeps the spectrum stationary;
* **growth and decay**: a smooth growth-rate field (steeper spectrum) that moves with the rain and
  intensifies some regions and weakens others at a steady rate;
* **reflectivity**: ``dBZ = DBZ_EDGE + DBZ_PER_STD * (latent - cutoff)`` where the latent
  field exceeds a per-sequence cutoff (rain area fraction varies between sequences), else the
  0 dBZ no-echo floor. Rain rate follows from the Z-R relation in :mod:`lstmforge.data.units`.

Frames are every 6 minutes on a 1 km grid, 100 x 100 by default, 20 frames (the 5 in / 15 out
HKO setup of Shi et al., NIPS 2015, Sec. 4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lstmforge.data.units import DBZ_FLOOR
from lstmforge.errors import InputError

TIMESTEP_MINUTES = 6
PIXEL_KM = 1.0
DBZ_EDGE = 10.0  # reflectivity at the edge of a rain area (0.3 mm/h with HKO's Z-R)
DBZ_PER_STD = 12.0  # dBZ per standard deviation of the latent field
DBZ_CAP = 55.0  # the strongest echo (about 250 mm/h with HKO's Z-R)


@dataclass(frozen=True)
class RadarSynthConfig:
    """Generator settings. Speeds in pixels (km) per frame (6 min); lifetimes in frames."""

    frame_size: int = 100
    seq_len: int = 20
    margin: int = 16
    spectral_slope: float = 3.0
    speed_range: tuple[float, float] = (0.5, 3.0)
    motion_perturbation: float = 0.6
    lifetime_frames_at_64px: float = 40.0
    growth_per_frame: float = 0.03
    cutoff_range: tuple[float, float] = (0.0, 0.8)

    def validate(self) -> None:
        """Reject impossible settings, naming the field."""
        if self.frame_size < 8:
            raise InputError(f"frame_size must be >= 8, got {self.frame_size}")
        if self.seq_len < 2:
            raise InputError(f"seq_len must be >= 2, got {self.seq_len}")
        if self.margin < 0:
            raise InputError(f"margin must be >= 0, got {self.margin}")
        if self.lifetime_frames_at_64px <= 0:
            raise InputError("lifetime_frames_at_64px must be > 0")


def _wavenumbers(size: int) -> np.ndarray:
    """|k| in cycles per pixel on a size x size grid (``rfft2`` layout)."""
    return np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])


def _power_law_filter(size: int, slope: float) -> np.ndarray:
    """Fourier amplitudes ``|k|^(-slope/2)`` (zero mean), scaled so filtered white noise has
    unit variance (the variance of ``irfft2(rfft2(w) A)`` is the mean of ``A^2`` over the full
    spectrum, approximated here on the half spectrum)."""
    k = _wavenumbers(size)
    k[0, 0] = np.inf  # no mean component
    amplitude = k ** (-slope / 2.0)
    return amplitude / np.sqrt(np.mean(amplitude**2))


def _power_law_spectrum(size: int, amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ``rfft2`` of a power-law field: filtered white noise in the Fourier domain."""
    return np.fft.rfft2(rng.standard_normal((size, size))) * amplitude


def power_law_field(size: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean, unit-variance periodic Gaussian field with power spectrum ``|k|^-slope``."""
    field = np.fft.irfft2(
        _power_law_spectrum(size, _power_law_filter(size, slope), rng), (size, size)
    )
    return (field - field.mean()) / field.std()


def departure_points(velocity: np.ndarray) -> np.ndarray:
    """Backward trajectories ``x - v(x)`` for a ``[2, N, N]`` velocity (rows, columns)."""
    size = velocity.shape[-1]
    grid = np.indices((size, size), dtype=np.float64)
    return grid - velocity


def advect(field: np.ndarray, departures: np.ndarray) -> np.ndarray:
    """One backward semi-Lagrangian step on a periodic grid, ``new(x) = old(x - v(x))``,
    with bilinear interpolation at the :func:`departure_points`."""
    return ndimage.map_coordinates(field, departures, order=1, mode="grid-wrap")


def synthetic_radar_sequence(
    rng: np.random.Generator, cfg: RadarSynthConfig = RadarSynthConfig()
) -> np.ndarray:
    """One sequence of reflectivity, float32 ``[seq_len, frame_size, frame_size]`` in dBZ."""
    size = cfg.frame_size + 2 * cfg.margin
    rain_filter = _power_law_filter(size, cfg.spectral_slope)
    k = _wavenumbers(size)
    with np.errstate(divide="ignore"):
        lifetime = cfg.lifetime_frames_at_64px * (1.0 / k) / 64.0
    keep = np.exp(-1.0 / lifetime)  # AR(1) coefficient per wavenumber; 1 for the mean
    renew = np.sqrt(1.0 - keep**2)

    theta = rng.uniform(0.0, 2.0 * np.pi)
    mean_motion = rng.uniform(*cfg.speed_range) * np.array([np.sin(theta), np.cos(theta)])
    perturb = [
        cfg.motion_perturbation * np.stack([power_law_field(size, 4.0, rng) for _ in range(2)])
        for _ in range(2)
    ]
    latent = power_law_field(size, cfg.spectral_slope, rng)
    growth_rate = cfg.growth_per_frame * power_law_field(size, 4.0, rng)
    cutoff = rng.uniform(*cfg.cutoff_range)

    frames = np.empty((cfg.seq_len, cfg.frame_size, cfg.frame_size), dtype=np.float32)
    crop = slice(cfg.margin, cfg.margin + cfg.frame_size)
    for t in range(cfg.seq_len):
        if t > 0:
            blend = t / (cfg.seq_len - 1)
            velocity = mean_motion[:, None, None] + (1 - blend) * perturb[0] + blend * perturb[1]
            departures = departure_points(velocity)
            innovation = _power_law_spectrum(size, rain_filter, rng)
            latent_spectrum = np.fft.rfft2(advect(latent, departures))
            latent = np.fft.irfft2(keep * latent_spectrum + renew * innovation, (size, size))
            growth_rate = advect(growth_rate, departures)
        # the rate moves with the rain, so a parcel has grown by t * rate after t frames
        intensity = latent[crop, crop] + t * growth_rate[crop, crop]
        dbz = DBZ_EDGE + DBZ_PER_STD * (intensity - cutoff)
        frames[t] = np.where(intensity > cutoff, np.minimum(dbz, DBZ_CAP), DBZ_FLOOR)
    return frames


def synthetic_radar_dataset(
    num_sequences: int, seed: int, cfg: RadarSynthConfig = RadarSynthConfig()
) -> np.ndarray:
    """``num_sequences`` sequences, float32 ``[N, T, H, W]`` dBZ; sequence i uses rng([seed, i])."""
    cfg.validate()
    if num_sequences < 1:
        raise InputError(f"num_sequences must be >= 1, got {num_sequences}")
    return np.stack(
        [
            synthetic_radar_sequence(np.random.default_rng([seed, i]), cfg)
            for i in range(num_sequences)
        ]
    )
