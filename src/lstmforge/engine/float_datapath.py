"""The float datapath: the same dataflow as the integer one, in float64 with exact sigmoid/tanh.

Used (a) as the engine's ``float-sparse`` mode (the artifact's pruned weights, dequantized, with
float arithmetic: this separates weight pruning/quantization loss from the loss of the
fixed-point activations and arithmetic), and (b) by calibration, with the pruned float weights,
to record the range of every signal whose format is chosen from data.
"""

from __future__ import annotations

import numpy as np

from lstmforge.compress.artifact import Block


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


class FloatDatapath:
    """Float64 arithmetic on a dict of weights (2-D matrices by name; biases; peepholes).

    ``ranges`` collects the largest magnitude seen per format key; ``trace``, when a list,
    receives ``(step, site, values)`` like :class:`~lstmforge.engine.integer_datapath.IntegerDatapath`.
    """

    def __init__(
        self, weights: dict[str, np.ndarray], trace: list | None = None, prefix: str = ""
    ) -> None:
        self.weights = weights
        self.trace = trace
        self.prefix = prefix
        self.ranges: dict[str, float] = {}
        self.step = 0

    @classmethod
    def from_block(cls, block: Block, trace: list | None = None) -> FloatDatapath:
        """The artifact's stored weights, dequantized."""
        weights = {name: m.dense() for name, m in block.matrices.items()}
        weights |= {name: v.values() for name, v in block.vectors.items()}
        return cls(weights, trace, f"{block.name or '<root>'}.")

    def _widen(self, key: str, values: np.ndarray) -> None:
        if values.size:
            self.ranges[key] = max(self.ranges.get(key, 0.0), float(np.max(np.abs(values))))

    def observe(self, site: str, values: np.ndarray, key: str) -> None:
        """Widen the range of format ``key`` and record the signal for the trace."""
        self._widen(key, values)
        if self.trace is not None:
            self.trace.append((self.step, self.prefix + site, np.asarray(values, dtype=np.float64)))

    def enter(self, values: np.ndarray, key: str) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def leave(self, values: np.ndarray, key: str) -> np.ndarray:
        return values

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.float64)

    def operand(self, values: np.ndarray, key: str) -> np.ndarray:
        return values

    def matvec(self, name: str, v: np.ndarray, src: str, dst: str) -> np.ndarray:
        return v @ self.weights[name].T

    def bias(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self.weights[name].reshape(shape)

    def finish(self, total: np.ndarray, dst: str, site: str) -> np.ndarray:
        return total

    def cell(
        self, partial: np.ndarray, c_prev: np.ndarray, layer: int, hidden_key: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM cell equations in float (same order as the integer unit)."""
        peep = {g: self.weights.get(f"weight_{g}_l{layer}", 0.0) for g in ("ci", "cf", "co")}
        pi, pf, pg, po = np.split(partial, 4, axis=1)
        i = sigmoid(pi + peep["ci"] * c_prev)
        f = sigmoid(pf + peep["cf"] * c_prev)
        g = np.tanh(pg)
        c_new = f * c_prev + i * g
        o = sigmoid(po + peep["co"] * c_new)
        m = o * np.tanh(c_new)
        for pre in (
            pi + peep["ci"] * c_prev,
            pf + peep["cf"] * c_prev,
            pg,
            po + peep["co"] * c_new,
        ):
            self._widen("pre", pre)
        if self.trace is not None:
            for name, values in (("i", i), ("f", f), ("g", g), ("o", o)):
                self.trace.append((self.step, f"{self.prefix}l{layer}.{name}", values))
        self.observe(f"l{layer}.cell", c_new, f"l{layer}.cell")
        return m, c_new
