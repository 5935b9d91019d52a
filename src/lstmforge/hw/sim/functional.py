"""What the simulated channels compute: the integer datapath with PE-level broadcast SpMV.

Each matrix-vector product is computed the way a channel runs it (ESE §5.2, EIE §III): the
input vector is broadcast one column at a time, every PE decodes that column's CSC entries of
its interleaved rows (``pos += rel_index + 1``) and adds ``weight * activation`` into its
32-bit accumulators, saturating after every addition, columns in increasing order. Rounding,
saturation, requantization, the element-wise cell and the sigmoid/tanh units are the engine's
own (:mod:`lstmforge.engine.fixed_point`, :mod:`lstmforge.engine.activation_units`,
:class:`lstmforge.engine.integer_datapath.IntegerDatapath`), and the order of products per time
step is the engine's one definition of the LSTM dataflow
(:func:`lstmforge.engine.blocks.run_lstm`), so the outputs match :func:`lstmforge.engine.run`
bit for bit.
"""

from __future__ import annotations

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel, SparseMatrix
from lstmforge.engine.blocks import run_lstm
from lstmforge.engine.fixed_point import ACCUMULATOR_BITS, SaturationCounter, saturate
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.hw.sim.structure import PEMatrix


class BroadcastSpMV:
    """SpMV by column broadcast over the PEs' CSC streams (decoded once per matrix)."""

    def __init__(self) -> None:
        self._columns: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(
        self,
        matrix: SparseMatrix,
        x: np.ndarray,
        counter: SaturationCounter | None = None,
        site: str = "",
    ) -> np.ndarray:
        """x [N, cols] activation codes -> accumulators [N, rows] (int64 holding 32-bit values)."""
        columns = self._columns.get(id(matrix))
        if columns is None:
            columns = PEMatrix("matrix", matrix.shape, tuple(matrix.pes)).column_entries()
            self._columns[id(matrix)] = columns
        acc = np.zeros((x.shape[0], matrix.shape[0]), dtype=np.int64)
        for j, (rows, weights) in enumerate(columns):
            if rows.size:
                acc[:, rows] = saturate(
                    acc[:, rows] + weights[None, :] * x[:, j : j + 1],
                    ACCUMULATOR_BITS,
                    counter,
                    site,
                )
        return acc


def run_block(
    cm: CompressedModel, block: Block, x: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], SaturationCounter]:
    """Run an LSTM block on float inputs x [channels, T, inputs] from zero state.

    Returns float ``(y, (h_n, c_n))`` as :func:`lstmforge.engine.run` does, and the saturation
    counts per site.
    """
    datapath = IntegerDatapath(cm, block)
    datapath.spmv = BroadcastSpMV()
    y, state = run_lstm(datapath, block.config, x, None)
    return y, state, datapath.counter
