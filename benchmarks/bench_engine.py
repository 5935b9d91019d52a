"""Per-time-step latency of the integer engine on ESE's LSTMP (153 -> 1024 cells -> 512).

One thread, batch 1, 11% density (32 PEs, balanced). Compares, per time step:

* the engine's fast path (numba SpMV, integer datapath), streaming a whole utterance in one
  call and frame by frame with carried state;
* dense ``torch.nn.LSTM(153, 1024, proj_size=512)`` (no peepholes: torch has none), one call;
* the same pruned weights as ``scipy.sparse`` CSR float64 matrices with NumPy element-wise math.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--steps 200] [--repeats 5]``.
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

from lstmforge.compress import compress_model
from lstmforge.engine import run
from lstmforge.engine.float_datapath import sigmoid
from lstmforge.nn import LSTM

INPUT, HIDDEN, PROJ, DENSITY, PES = 153, 1024, 512, 0.11, 32


def best_of(repeats: int, fn) -> float:
    """Smallest wall time of ``repeats`` calls (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LSTM(INPUT, HIDDEN, proj_size=PROJ).eval()
    x = torch.randn(1, args.steps, INPUT)
    cm = compress_model(model, density=DENSITY, num_pes=PES, calibration=x[:, :20])
    run(cm, x[:, :2])  # compile the numba kernel (cached on disk afterwards)

    engine_stream = best_of(args.repeats, lambda: run(cm, x))

    def frame_by_frame() -> None:
        state = None
        for t in range(args.steps):
            _, state = run(cm, x[:, t : t + 1], state)

    engine_frames = best_of(args.repeats, frame_by_frame)

    dense = torch.nn.LSTM(INPUT, HIDDEN, proj_size=PROJ, batch_first=True).eval()
    with torch.no_grad():
        dense(x)
        torch_dense = best_of(args.repeats, lambda: dense(x))
    scipy_csr = best_of(args.repeats, scipy_step_runner(cm, x[0].double().numpy()))

    per_step = {
        "engine_fast_stream_us": 1e6 * engine_stream / args.steps,
        "engine_fast_frame_by_frame_us": 1e6 * engine_frames / args.steps,
        "torch_dense_lstm_us": 1e6 * torch_dense / args.steps,
        "scipy_csr_float_us": 1e6 * scipy_csr / args.steps,
    }
    nonzeros = sum(m.nonzeros for m in cm.blocks[0].matrices.values())
    print(
        json.dumps(
            {
                "model": f"LSTMP {INPUT}->{HIDDEN}->{PROJ}, peepholes, density {DENSITY}, {PES} PEs",
                "nonzeros": nonzeros,
                "steps": args.steps,
                "repeats": args.repeats,
                "per_step_us": per_step,
                "speedup_vs_torch_dense": per_step["torch_dense_lstm_us"]
                / per_step["engine_fast_stream_us"],
                "speedup_vs_scipy_csr": per_step["scipy_csr_float_us"]
                / per_step["engine_fast_stream_us"],
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
