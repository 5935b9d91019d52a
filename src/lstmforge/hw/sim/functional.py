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
from scipy import sparse

from lstmforge.compress.artifact import Block, CompressedModel, SparseMatrix
from lstmforge.engine.blocks import run_lstm
from lstmforge.engine.fixed_point import ACCUMULATOR_BITS, SaturationCounter, saturate
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.hw.sim.structure import PEMatrix

ACC_MAX = (1 << (ACCUMULATOR_BITS - 1)) - 1


class BroadcastSpMV:
    """SpMV by column broadcast over the PEs' CSC streams (decoded once per matrix).

    When no partial sum of a row can leave the accumulator's range (``|W| @ |x| <= 2**31 - 1``
    for every row and channel), saturation cannot fire and the column-ordered saturating sum is
    the exact integer product, computed at once with a sparse matrix; otherwise the columns are
    accumulated one broadcast at a time with the engine's saturating adder.
    """

    def __init__(self) -> None:
        self._columns: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._sparse: dict[int, tuple[sparse.csr_matrix, sparse.csr_matrix]] = {}

    def _decoded(self, matrix: SparseMatrix) -> list[tuple[np.ndarray, np.ndarray]]:
        columns = self._columns.get(id(matrix))
        if columns is None:
            columns = PEMatrix("matrix", matrix.shape, tuple(matrix.pes)).column_entries()
            self._columns[id(matrix)] = columns
            rows = np.concatenate([r for r, _ in columns])
            cols = np.repeat(np.arange(matrix.shape[1]), [r.size for r, _ in columns])
            vals = np.concatenate([v for _, v in columns])
            product = sparse.csr_matrix((vals, (rows, cols)), shape=matrix.shape, dtype=np.int64)
            self._sparse[id(matrix)] = (product, abs(product))
        return columns

    def __call__(
        self,
        matrix: SparseMatrix,
        x: np.ndarray,
        counter: SaturationCounter | None = None,
        site: str = "",
    ) -> np.ndarray:
        """x [N, cols] activation codes -> accumulators [N, rows] (int64 holding 32-bit values)."""
        x = np.asarray(x, dtype=np.int64)  # |x| and the products of narrower codes would wrap
        columns = self._decoded(matrix)
        product, magnitude = self._sparse[id(matrix)]
        if (magnitude @ np.abs(x).T).max(initial=0) <= ACC_MAX:
            if counter is not None:
                counter.record(site, 0)
            return np.ascontiguousarray((product @ x.T).T)
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
    cm: CompressedModel,
    block: Block,
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], SaturationCounter]:
    """Run an LSTM block on float inputs x [channels, T, inputs] from ``state`` (float
    ``(h0 [L, channels, out], c0 [L, channels, H])``; None: zeros).

    Returns float ``(y, (h_n, c_n))`` as :func:`lstmforge.engine.run` does, and the saturation
    counts per site.
    """
    datapath = IntegerDatapath(cm, block)
    datapath.spmv = BroadcastSpMV()
    y, state = run_lstm(datapath, block.config, x, state)
    return y, state, datapath.counter
