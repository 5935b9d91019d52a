"""Armband augmentation: simulated re-donning of an electrode ring on the envelope features.

A new session puts the armband on again, rotated by a fraction of the inter-electrode
spacing, and changes every electrode's skin contact (Hargrove et al., Biomed. Signal Process.
Control 3, 175-180, 2008; Young et al., IEEE Trans. Biomed. Eng. 58, 2537-2544, 2011). Both are
the dominant causes of between-session degradation of myoelectric decoders, and the usual
remedy is to train on signals with simulated shifts and gains. One draw of
:class:`ArmbandAugmentation` models one placement:

* **rotation** ``s ~ U(-shift, shift)`` electrode spacings: electrode ``c`` now sits at ring
  position ``c + s`` and sees the field there, linearly interpolated between its circular
  neighbours ``⌊c + s⌋`` and ``⌊c + s⌋ + 1`` (modulo the number of electrodes). The
  channels must be *one ring of equally spaced electrodes* (the synthetic data; NinaPro DB2's
  first eight and DB8's rings are, its extra electrodes are not);
* **contact gain** ``g_c = exp(N(0, gain²))`` per channel, multiplying the envelope.

It acts on the RMS envelope before standardisation (the envelope of a mixture is not exactly
the mixture of the envelopes; interpolating envelopes is the approximation used for shifted
RMS maps), so the standardised features of an augmented window are
``norm((g ∘ interp(norm⁻¹(z), s)))`` with the training normaliser.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lstmforge.errors import InputError


@dataclass(frozen=True)
class ArmbandAugmentation:
    """Random armband rotation (``shift`` electrode spacings at most) and contact gains."""

    shift: float = 0.0
    gain: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject negative or non-finite spreads, naming the field."""
        for name, value in asdict(self).items():
            if not (np.isfinite(value) and value >= 0.0):
                raise InputError(f"augmentation {name} must be finite and >= 0, got {value}")

    @property
    def active(self) -> bool:
        """Whether any augmentation is drawn."""
        return self.shift > 0.0 or self.gain > 0.0

    def to_dict(self) -> dict[str, float]:
        """Plain values for hparams / JSON."""
        return asdict(self)

    def draw(self, n_channels: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
        """One placement: rotation in spacings and per-channel gains [C]."""
        rotation = float(rng.uniform(-self.shift, self.shift)) if self.shift > 0 else 0.0
        gains = np.exp(rng.normal(0.0, self.gain, n_channels)) if self.gain > 0 else None
        return rotation, np.ones(n_channels) if gains is None else gains

    def apply(self, envelope: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One placement applied to a raw envelope [F, C] (all frames share it)."""
        rotation, gains = self.draw(envelope.shape[1], rng)
        return (rotate_ring(envelope, rotation) * gains).astype(np.float32)

    def apply_standardised(
        self, frames: np.ndarray, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """:meth:`apply` to standardised frames [F, C] through their normaliser's statistics."""
        return ((self.apply(frames * std + mean, rng) - mean) / std).astype(np.float32)


def rotate_ring(envelope: np.ndarray, rotation: float) -> np.ndarray:
    """Channels [..., C] of a ring read ``rotation`` spacings further on (linear interpolation)."""
    base = int(np.floor(rotation))
    frac = rotation - base
    lower = np.roll(envelope, -base, axis=-1)
    if frac == 0.0:
        return lower
    return (1.0 - frac) * lower + frac * np.roll(lower, -1, axis=-1)
