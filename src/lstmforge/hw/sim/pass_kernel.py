"""Cycle recurrence of one channel streaming broadcast columns through its PEs (numba).

ESE §5 / EIE §III: the channel broadcasts one input column per cycle into every PE's activation
FIFO (depth ``D``); PE ``p`` pops column ``s`` when it is free and spends
``cost[s, p] = max(entries, 1)`` cycles on it (one stored entry per cycle; popping a column with
no entry takes one cycle). With ``b_s`` the broadcast cycle, ``st[s, p]`` the start cycle and
``ready_s`` the cycle the column's value exists (state flow):

    b_s      = max(b_{s-1} + 1, ready_s, max_p st[s - D, p])     (FIFO full: wait for a pop)
    st[s, p] = max(st[s-1, p] + cost[s-1, p], b_s, w_s)          (w_s: weights arrived)

When weights stream from off-chip memory, the memory management unit reads column ``s``'s
entries of all PEs (``nbytes[s]``) in stream order at ``bpc`` bytes per cycle after a latency of
``lat`` cycles, and may run at most ``K`` columns ahead of the slowest PE (per-PE sparse-matrix
buffers):

    issue_s = max(issue_{s-1} + nbytes[s-1] / bpc, max_p finish[s - K, p]),
    w_s     = ceil(issue_s + nbytes[s] / bpc + lat).

Every cycle a PE waits is charged to one cause: waiting for ``b_s`` because a FIFO was full is
load imbalance, because ``ready_s`` was late is dependency (state flow); waiting for ``w_s``
beyond that is memory bandwidth.
"""

from __future__ import annotations

import numba
import numpy as np

IMBALANCE, MEMORY, DEPENDENCY = 0, 1, 2
STALL_CAUSES = ("load_imbalance", "memory_bandwidth", "dependency")


class ChannelState:
    """What one channel carries from one pass to the next (PE, FIFO, broadcaster, MMU)."""

    def __init__(self, num_pes: int, fifo_depth: int, prefetch_columns: int) -> None:
        self.pe_free = np.zeros(num_pes, dtype=np.int64)
        self.fifo_starts = np.zeros((fifo_depth, num_pes), dtype=np.int64)
        self.done_ring = np.zeros(prefetch_columns, dtype=np.int64)
        # [columns broadcast so far, last broadcast cycle]
        self.counters = np.zeros(2, dtype=np.int64)
        self.counters[1] = -1
        # [MMU bus free at, bytes of the previous column]
        self.mmu = np.zeros(2, dtype=np.float64)
        self.stalls = np.zeros((num_pes, 3), dtype=np.int64)


@numba.njit(cache=True)
def _run_pass(
    cost,
    ready,
    nbytes,
    stream,
    bpc,
    lat,
    pe_free,
    fifo_starts,
    done_ring,
    counters,
    mmu,
    stalls,
    start,
    bcast,
):  # pragma: no cover - compiled
    depth = fifo_starts.shape[0]
    ring = done_ring.shape[0]
    n_pe = cost.shape[1]
    for s in range(cost.shape[0]):
        g = counters[0]
        b = counters[1] + 1
        cause = IMBALANCE
        if ready[s] > b:
            b = ready[s]
            cause = DEPENDENCY
        if g >= depth:
            slot = g % depth
            for p in range(n_pe):
                if fifo_starts[slot, p] > b:
                    b = fifo_starts[slot, p]
                    cause = IMBALANCE
        arrive = -1
        if stream:
            issue = mmu[0]
            if g >= ring and done_ring[g % ring] > issue:
                issue = done_ring[g % ring]
            mmu[0] = issue + nbytes[s] / bpc
            arrive = np.int64(np.ceil(issue + nbytes[s] / bpc + lat))
        latest = 0
        for p in range(n_pe):
            st = pe_free[p]
            if b > st:
                stalls[p, cause] += b - st
                st = b
            if arrive > st:
                stalls[p, MEMORY] += arrive - st
                st = arrive
            start[s, p] = st
            fifo_starts[g % depth, p] = st
            pe_free[p] = st + cost[s, p]
            if pe_free[p] > latest:
                latest = pe_free[p]
        done_ring[g % ring] = latest
        bcast[s] = b
        counters[0] = g + 1
        counters[1] = b


def run_pass(
    state: ChannelState,
    cost: np.ndarray,
    ready: np.ndarray,
    nbytes: np.ndarray | None = None,
    bytes_per_cycle: float = 1.0,
    latency: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Stream the columns of ``cost`` [S, num_pes] through the channel, updating ``state``.

    ``ready`` [S] is the cycle each column's value exists; ``nbytes`` [S] the weight bytes to
    read for each column when weights stream from memory (``None``: weights on chip). Returns
    the start cycles [S, num_pes] and the broadcast cycles [S].
    """
    cost = np.ascontiguousarray(cost, dtype=np.int64)
    count = cost.shape[0]
    start = np.empty(cost.shape, dtype=np.int64)
    bcast = np.empty(count, dtype=np.int64)
    stream = nbytes is not None
    nbytes_arr = np.ascontiguousarray(nbytes, dtype=np.float64) if stream else np.zeros(count)
    _run_pass(
        cost,
        np.ascontiguousarray(ready, dtype=np.int64),
        nbytes_arr,
        stream,
        float(bytes_per_cycle),
        float(latency),
        state.pe_free,
        state.fifo_starts,
        state.done_ring,
        state.counters,
        state.mmu,
        state.stalls,
        start,
        bcast,
    )
    return start, bcast
