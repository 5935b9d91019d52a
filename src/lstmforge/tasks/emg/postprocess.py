"""Causal output conditioning for regression outputs: smoothing and a deadband.

What myoelectric-control users apply before driving a hand (e.g. LibEMG's post-processing):

* exponential smoothing ``s_t = α·y_t + (1 − α)·s_{t−1}`` (``alpha = 1`` is off; the first
  output initialises ``s``), a first-order low-pass with time constant −Δt / ln(1 − α);
* a deadband of width ``deadband`` (output units, per joint): the output holds its last value
  until the smoothed value moves further than ``deadband`` from it, which removes jitter at rest.

Both are causal and carry their state, so the streaming run applies exactly the same filter
window by window as the offline evaluation does over the whole sequence.
"""

from __future__ import annotations

import numpy as np

from lstmforge.errors import InputError


class OutputConditioner:
    """Exponential smoothing followed by a deadband, applied step by step."""

    def __init__(self, alpha: float = 1.0, deadband: float = 0.0) -> None:
        if not 0.0 < alpha <= 1.0:  # False for NaN too
            raise InputError(f"smoothing alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= deadband < np.inf:
            raise InputError(f"deadband must be a finite number >= 0, got {deadband}")
        self.alpha, self.deadband = alpha, deadband
        self.smoothed: np.ndarray | None = None
        self.held: np.ndarray | None = None

    def step(self, y: np.ndarray) -> np.ndarray:
        """Condition one output vector [J]."""
        y = np.asarray(y, dtype=np.float64)
        if self.smoothed is None:
            self.smoothed, self.held = y.copy(), y.copy()
            return y.copy()
        self.smoothed = self.alpha * y + (1.0 - self.alpha) * self.smoothed
        moved = np.abs(self.smoothed - self.held) > self.deadband
        self.held = np.where(moved, self.smoothed, self.held)
        return self.held.copy()

    def run(self, sequence: np.ndarray) -> np.ndarray:
        """Condition a whole sequence [T, J] (same result as calling :meth:`step` T times)."""
        return np.stack([self.step(y) for y in sequence]) if len(sequence) else sequence.copy()
