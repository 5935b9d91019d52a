"""Benchmark of the recurrent cores on CPU: lstmforge.nn.LSTM vs torch.nn.LSTM, and ConvLSTM.

Times the forward pass and forward+backward (sum of outputs as the loss, gradients of all
parameters and the input) as the best of several rounds after a warm-up round, at the same
sizes for every row. Each round runs every row in turn, so the baseline is measured under the
same load as the rest even on a shared machine.

    .venv/bin/python benchmarks/bench_cores.py            # B=32, T=100, H=512 (target) and 128
    .venv/bin/python benchmarks/bench_cores.py --quick    # small sizes, a few seconds

Prints a Markdown table (paste it into docs/benchmarks.md) and, with ``--json PATH``, writes
the numbers as one JSON object.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lstmforge.io import write_json
from lstmforge.nn import LSTM, ConvLSTM


def seconds(fn: Callable[[], None]) -> float:
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def workloads(module: torch.nn.Module, x: torch.Tensor) -> dict[str, Callable[[], None]]:
    """The two timed workloads of ``module(x)``: forward, and forward+backward."""
    module.train()  # dropout is 0: same math, and the fused kernel keeps what backward needs
    x = x.clone().requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            module(x)

    def forward_backward() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        y, _ = module(x)
        y.sum().backward()

    return {"forward_s": forward, "forward_backward_s": forward_backward}


class PerStepConvLSTM(torch.nn.Module):
    """Baseline: the common ConvLSTM layout, one convolution of ``cat([x_t, h_{t-1}])`` per step.

    No peepholes; the same math as ``ConvLSTM(peephole=False)`` with one layer.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.conv = torch.nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, steps, _, height, width = x.shape
        h = x.new_zeros(batch, self.hidden_channels, height, width)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            i, f, g, o = self.conv(torch.cat([x[:, t], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


def timed_rows(modules: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> list[dict]:
    """Best time of each module's workloads over ``repeats`` rounds, after one warm-up round.

    Every round runs every module in turn, so load from other processes on a shared machine
    spreads over all rows alike; the minimum is kept, as ``timeit`` recommends (other load only
    adds time). Ratios are relative to the first module (the baseline).
    """
    jobs = {name: workloads(module, x) for name, module in modules.items()}
    times = {name: {kind: [] for kind in job} for name, job in jobs.items()}
    for round_index in range(repeats + 1):
        for name, job in jobs.items():
            for kind, fn in job.items():
                elapsed = seconds(fn)
                if round_index > 0:
                    times[name][kind].append(elapsed)
    rows = [
        {"model": name, **{kind: min(values) for kind, values in kinds.items()}}
        for name, kinds in times.items()
    ]
    base = rows[0]
    for row in rows:
        row["forward_vs_baseline"] = row["forward_s"] / base["forward_s"]
        row["forward_backward_vs_baseline"] = row["forward_backward_s"] / base["forward_backward_s"]
    return rows


def lstm_rows(batch: int, steps: int, hidden: int, repeats: int) -> list[dict]:
    """torch.nn.LSTM (baseline), lstmforge LSTM without and with peepholes, same weights."""
    torch.manual_seed(0)
    x = torch.randn(batch, steps, hidden)
    reference = torch.nn.LSTM(hidden, hidden, batch_first=True)
    modules = {
        "torch.nn.LSTM (baseline)": reference,
        "lstmforge LSTM, peephole=False (fused torch kernel)": LSTM.from_torch(reference, False),
        "lstmforge LSTM, peephole=True": LSTM.from_torch(reference, True),
    }
    return timed_rows(modules, x, repeats)


def convlstm_rows(
    batch: int, steps: int, channels: int, frame: int, kernel: int, repeats: int
) -> list[dict]:
    """Per-step baseline, then ConvLSTM without, with per-channel and per-pixel peepholes."""
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 1, frame, frame)
    modules = {"per-step cat([x, h]) convolution (baseline)": PerStepConvLSTM(1, channels, kernel)}
    for peephole in (False, "channel", True):
        modules[f"lstmforge ConvLSTM, peephole={peephole!r}"] = ConvLSTM(
            1, channels, kernel, frame_size=(frame, frame), peephole=peephole
        )
    return timed_rows(modules, x, repeats)


def markdown(title: str, rows: list[dict]) -> str:
    """A Markdown table of the rows (times in milliseconds, ratios to the first row)."""
    lines = [
        f"**{title}**",
        "",
        "| model | forward (ms) | forward+backward (ms) | fwd / baseline | fwd+bwd / baseline |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['forward_s'] * 1e3:.1f} | "
            f"{row['forward_backward_s'] * 1e3:.1f} | {row['forward_vs_baseline']:.2f} | "
            f"{row['forward_backward_vs_baseline']:.2f} |"
        )
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        lstm_sizes = [{"batch": 8, "steps": 20, "hidden": 128}]
        conv_size = {"batch": 2, "steps": 5, "channels": 16, "frame": 32, "kernel": 3}
        repeats = args.repeats or 3
    else:  # the target size, then a size like the speech and EMG models
        lstm_sizes = [
            {"batch": 32, "steps": 100, "hidden": 512},
            {"batch": 32, "steps": 100, "hidden": 128},
        ]
        conv_size = {"batch": 4, "steps": 10, "channels": 32, "frame": 64, "kernel": 5}
        repeats = args.repeats or 5
    machine = f"{platform.machine()} {cpu_name()}, {os.cpu_count()} cores"
    print(f"torch {torch.__version__}, {machine}, {args.threads} thread(s), {repeats} repeats\n")
    lstm_tables = []
    for size in lstm_sizes:
        rows = lstm_rows(**size, repeats=repeats)
        print(markdown("LSTM, B={batch}, T={steps}, I=H={hidden}".format(**size), rows) + "\n")
        lstm_tables.append({"size": size, "rows": rows})
    conv = convlstm_rows(**conv_size, repeats=repeats)
    title = "ConvLSTM, B={batch}, T={steps}, Cin=1, Hc={channels}, {frame}x{frame}, k={kernel}"
    print(markdown(title.format(**conv_size), conv))
    if args.json is not None:
        write_json(
            args.json,
            {
                "torch_version": torch.__version__,
                "machine": machine,
                "threads": args.threads,
                "repeats": repeats,
                "lstm": lstm_tables,
                "convlstm": {"size": conv_size, "rows": conv},
            },
        )


if __name__ == "__main__":
    main()
