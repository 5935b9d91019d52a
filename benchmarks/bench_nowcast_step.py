"""Cost of one training step of the paper's Moving MNIST models on this machine.

One Adam step (forward, cross-entropy loss, backward, update) of a named nowcasting model on
a batch of random 64 x 64 sequences, 10 in / 10 out, one torch thread; the models are run in
turn in each round and each keeps its best round, so both see the same load. It sizes the
full-size runs of Shi et al.'s `convlstm-5x5-128-64-64` and `fc-lstm-2048-2048`
(docs/nowcasting.md): seconds per step times the steps a run needs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nowcast_step.py --batch 4 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from lstmforge.tasks.nowcast.data import default_data
from lstmforge.tasks.nowcast.module import NowcastModule


def step_seconds(module: NowcastModule, optimiser: torch.optim.Optimizer, batch) -> float:
    """Wall seconds of one Adam step on ``batch``."""
    start = time.perf_counter()
    optimiser.zero_grad()
    module._loss(batch).backward()
    optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="convlstm-5x5-128-64-64,fc-lstm-2048-2048")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = default_data("moving-mnist", num_train=8, num_val=2, num_test=2, batch_size=args.batch)
    batch = (torch.rand(args.batch, 10, 1, 64, 64), torch.rand(args.batch, 10, 1, 64, 64))
    models = {}
    for name in args.archs.split(","):
        module = NowcastModule(name, data.to_dict(), "bce", 1e-3)
        models[name] = (module, torch.optim.Adam(module.parameters(), 1e-3))
    best = {name: float("inf") for name in models}
    for _ in range(args.rounds + 1):  # the first round warms up and is not kept
        for name, (module, optimiser) in models.items():
            best[name] = min(best[name], step_seconds(module, optimiser, batch))
    print(f"load average {os.getloadavg()[0]:.1f}, batch {args.batch}, one thread")
    print("| model | parameters | seconds per Adam step (best of rounds) |")
    print("| --- | ---: | ---: |")
    for name, (module, _) in models.items():
        params = sum(p.numel() for p in module.parameters())
        print(f"| `{name}` | {params:,} | {best[name]:.2f} |")


if __name__ == "__main__":
    main()
