"""Cost of one training step of the paper's Moving MNIST models on this machine.

One Adam step (forward, cross-entropy loss, backward, update) of a named nowcasting model on
a batch of random 64 x 64 sequences, 10 in / 10 out; the models are run in turn in each round
and each keeps its best round, so both see the same load. It sizes the full-size runs of Shi et
al.'s `convlstm-5x5-128-64-64` and `fc-lstm-2048-2048` (docs/nowcasting.md): seconds per step
times the steps a run needs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nowcast_step.py --batch 4 --rounds 3

On a CUDA GPU, ``--device cuda --bf16`` times the step as ``nowcast train`` runs it (Lightning's
bf16-mixed is autocast to bfloat16), ``--compile`` adds ``torch.compile`` variants of each model
(``default`` and ``reduce-overhead``, the CUDA-graph mode) next to eager, and ``--profile``
prints the kernels that take the time in one eager step of each model, and
``--cudnn-benchmark`` adds eager with cuDNN's convolution algorithm search
(``torch.backends.cudnn.benchmark``; ``nowcast train`` leaves it off: it did not pay on an H200,
docs/benchmarks.md):

    python benchmarks/bench_nowcast_step.py --device cuda --bf16 --batch 16 --rounds 20 \\
        --cudnn-benchmark --compile --profile
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from arguments import positive_int
from lstmforge.tasks.nowcast.data import default_data
from lstmforge.tasks.nowcast.module import NowcastModule

# Untimed steps per variant: under reduce-overhead, torch.compile's CUDA graph trees run a
# warm-up, then record the graph, then replay it (PyTorch docs, "CUDAGraph Trees"); the timed
# rounds should see replays only.
WARMUP_STEPS = 3


def make_step(
    module: NowcastModule,
    optimiser: torch.optim.Optimizer,
    bf16: bool,
    loss_fn,
    cudnn_benchmark: bool,
):
    """One Adam step on a batch, under bf16 autocast when asked, with cuDNN's algorithm
    search on or off (``torch.backends.cudnn.benchmark``, global: set before every step)."""
    device_type = next(module.parameters()).device.type
    autocast = (
        torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step(batch) -> None:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        optimiser.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(batch)
        loss.backward()
        optimiser.step()

    return step


def step_seconds(step, batch, device: torch.device) -> float:
    """Wall seconds of one step (synchronised with the GPU on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def variants(name: str, data, device: torch.device, bf16: bool, modes: list[str]):
    """(label, step, module) for eager and each of ``modes`` of model ``name``: a
    torch.compile mode, or ``cudnn-benchmark`` (eager with cuDNN's algorithm search; every
    other variant runs without it)."""
    for mode in ["eager", *modes]:
        torch.manual_seed(0)
        module = NowcastModule(name, data.to_dict(), "bce", 1e-3).to(device)
        if mode not in ("eager", "cudnn-benchmark"):
            module.model.compile(mode=mode)  # as `nowcast train --compile MODE` does
        optimiser = torch.optim.Adam(module.parameters(), 1e-3)
        label = name if mode == "eager" else f"{name} ({mode})"
        step = make_step(module, optimiser, bf16, module._loss, mode == "cudnn-benchmark")
        yield label, step, module


def profile_step(label: str, step, batch, device: torch.device) -> None:
    """Print the ten kernels (or CPU ops) that take the most time in one step."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step_seconds(step, batch, device)
    key = "device_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"\n{label}: one step, top ops by {key}")
    print(prof.key_averages().table(sort_by=key, row_limit=10, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="convlstm-5x5-128-64-64,fc-lstm-2048-2048")
    parser.add_argument("--batch", type=positive_int, default=4)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile modes")
    parser.add_argument(
        "--cudnn-benchmark", action="store_true", help="also time eager with cuDNN's search"
    )
    parser.add_argument("--profile", action="store_true", help="print the top ops of a step")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    data = default_data("moving-mnist", num_train=8, num_val=2, num_test=2, batch_size=args.batch)
    batch = tuple(torch.rand(args.batch, 10, 1, 64, 64, device=device) for _ in range(2))
    modes = ["cudnn-benchmark"] if args.cudnn_benchmark else []
    modes += ["default", "reduce-overhead"] if args.compile else []
    runs = {}
    for name in args.archs.split(","):
        for label, step, module in variants(name, data, device, args.bf16, modes):
            start = time.perf_counter()
            step_seconds(step, batch, device)  # the first step (and compilation) is not kept
            warmup = time.perf_counter() - start
            for _ in range(WARMUP_STEPS - 1):  # CUDA graphs are recorded after a warm-up run
                step_seconds(step, batch, device)
            runs[label] = (step, module, warmup, [])
    for _ in range(args.rounds):
        for step, _, _, times in runs.values():
            times.append(step_seconds(step, batch, device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "one CPU thread"
    print(
        f"{where}, batch {args.batch}, {'bf16 autocast' if args.bf16 else 'fp32'}, "
        f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}"
    )
    print("| model | parameters | first step (s) | best step (s) | median step (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, (_, module, warmup, times) in runs.items():
        params = sum(p.numel() for p in module.parameters())
        print(
            f"| `{label}` | {params:,} | {warmup:.2f} | {min(times):.4f} | "
            f"{statistics.median(times):.4f} |"
        )
    if args.profile:
        for label, (step, _, _, _) in runs.items():
            if "(" not in label or "cudnn" in label:  # eager steps only
                profile_step(label, step, batch, device)


if __name__ == "__main__":
    main()
