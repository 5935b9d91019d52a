"""Per-time-step latency of the integer engine on ESE's LSTMP (153 -> 1024 cells -> 512).

One thread, batch 1, 11% density (32 PEs, balanced). Compares, per time step:

* the engine's fast path (numba SpMV, integer datapath), streaming a whole utterance in one
  call and frame by frame with carried state;
* dense ``torch.nn.LSTM(153, 1024, proj_size=512)`` (no peepholes: torch has none), one call;
* the same pruned weights as ``scipy.sparse`` CSR float64 matrices with NumPy element-wise math.

Each path is timed ``--repeats`` times in turn (so all see the same load) and the best run is
kept, both in wall time and in this process's CPU time (``time.process_time``, which leaves
out the time the process waits for a core on a shared machine). On a machine shared with
other work the load drifts over minutes, so it also reports the speedup over dense torch
round by round (both timed in the same round): median, quartiles and range. And the engine's
recurrent products (the window kernel, one vector) in ns per stored weight.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--steps 200] [--repeats 15]``.
Prints one JSON object; results go to docs/benchmarks.md by hand with the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import scipy.sparse as sp
import torch

from arguments import positive_int
from lstmforge.compress import compress_model
from lstmforge.engine import run
from lstmforge.engine.float_datapath import sigmoid
from lstmforge.engine.spmv import WindowMatrix, window_layout, window_vector_kernel
from lstmforge.nn import LSTM

INPUT, HIDDEN, PROJ, DENSITY, PES = 153, 1024, 512, 0.11, 32


def timed_rounds(repeats: int, paths: dict) -> dict[str, np.ndarray]:
    """``{name: [repeats, 2] array}``: each round's (wall, CPU) seconds of every path; a round
    calls every path once, in turn, so the paths of one round see the same load."""
    times = {name: np.empty((repeats, 2)) for name in paths}
    for r in range(repeats):
        for name, fn in paths.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name][r] = time.perf_counter() - wall, time.process_time() - cpu
    return times


def paired_ratios(slow: np.ndarray, fast: np.ndarray) -> dict[str, float]:
    """The per-round wall-time ratios ``slow / fast`` (two paths timed one right after the
    other in each round): their median, quartiles and range. The ratio of one round cancels
    most of the load that both paths met in it, which the ratio of two best rounds, taken
    from different minutes, does not."""
    ratios = slow[:, 0] / fast[:, 0]
    low, median, high = np.percentile(ratios, [25, 50, 75])
    return {
        "median": float(median),
        "quartiles": [float(low), float(high)],
        "range": [float(ratios.min()), float(ratios.max())],
    }


def ns_per_weight(layout: WindowMatrix, x: np.ndarray, weights: int, repeats: int) -> float:
    """Best time of one :func:`window_vector_kernel` call over ``repeats`` calls, per weight."""
    best = float("inf")
    acc = np.empty(layout.row_ptr.size - 1, dtype=np.int64)
    for _ in range(repeats):
        start = time.perf_counter()
        window_vector_kernel(layout, x, acc)
        best = min(best, time.perf_counter() - start)
    return 1e9 * best / weights


def scipy_step_runner(cm, x: np.ndarray):
    """A float CSR LSTMP over x [T, I] with the artifact's (dequantized) sparse weights."""
    block = cm.blocks[0]
    w_ih, w_hh, w_hr = (
        sp.csr_matrix(block.matrices[f"weight_{m}_l0"].dense()) for m in ("ih", "hh", "hr")
    )
    bias = block.vectors["bias_l0"].values()
    w_ci, w_cf, w_co = (block.vectors[f"weight_{g}_l0"].values() for g in ("ci", "cf", "co"))

    def steps() -> None:
        r, c = np.zeros(PROJ), np.zeros(HIDDEN)
        for t in range(x.shape[0]):
            gates = w_ih @ x[t] + w_hh @ r + bias
            i = sigmoid(gates[:HIDDEN] + w_ci * c)
            f = sigmoid(gates[HIDDEN : 2 * HIDDEN] + w_cf * c)
            g = np.tanh(gates[2 * HIDDEN : 3 * HIDDEN])
            c = f * c + i * g
            o = sigmoid(gates[3 * HIDDEN :] + w_co * c)
            r = w_hr @ (o * np.tanh(c))

    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=200)
    parser.add_argument("--repeats", type=positive_int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LSTM(INPUT, HIDDEN, proj_size=PROJ).eval()
    x = torch.randn(1, args.steps, INPUT)
    cm = compress_model(model, density=DENSITY, num_pes=PES, calibration=x[:, :20])
    run(cm, x[:, :2])  # compile the numba kernels (cached on disk afterwards)

    def frame_by_frame() -> None:
        state = None
        for t in range(args.steps):
            _, state = run(cm, x[:, t : t + 1], state)

    dense = torch.nn.LSTM(INPUT, HIDDEN, proj_size=PROJ, batch_first=True).eval()
    paths = {
        "engine_fast_stream": lambda: run(cm, x),
        "torch_dense_lstm": lambda: dense(x),  # right after the engine: a round's pair
        "engine_fast_frame_by_frame": frame_by_frame,
        "scipy_csr_float": scipy_step_runner(cm, x[0].double().numpy()),
    }
    with torch.no_grad():
        dense(x)
        times = timed_rounds(args.repeats, paths)
    best = {name: rounds.min(axis=0) for name, rounds in times.items()}
    per_step = {f"{name}_us": 1e6 * wall / args.steps for name, (wall, _) in best.items()}
    cpu_per_step = {f"{name}_us": 1e6 * cpu / args.steps for name, (_, cpu) in best.items()}
    block = cm.blocks[0]
    recurrent = {}
    for name in ("weight_hh_l0", "weight_hr_l0"):
        matrix = block.matrices[name]
        x_codes = np.random.default_rng(1).integers(-3000, 3000, matrix.shape[1])
        recurrent[name] = ns_per_weight(window_layout(matrix), x_codes, matrix.nonzeros, 50)
    nonzeros = sum(m.nonzeros for m in cm.blocks[0].matrices.values())
    print(
        json.dumps(
            {
                "model": f"LSTMP {INPUT}->{HIDDEN}->{PROJ}, peepholes, density {DENSITY}, {PES} PEs",
                "nonzeros": nonzeros,
                "steps": args.steps,
                "repeats": args.repeats,
                "per_step_us": per_step,
                "cpu_per_step_us": cpu_per_step,
                "speedup_vs_torch_dense": per_step["torch_dense_lstm_us"]
                / per_step["engine_fast_stream_us"],
                "cpu_speedup_vs_torch_dense": cpu_per_step["torch_dense_lstm_us"]
                / cpu_per_step["engine_fast_stream_us"],
                "speedup_vs_scipy_csr": per_step["scipy_csr_float_us"]
                / per_step["engine_fast_stream_us"],
                "speedup_vs_torch_dense_per_round": paired_ratios(
                    times["torch_dense_lstm"], times["engine_fast_stream"]
                ),
                "ns_per_weight": recurrent,
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
