"""Wall time of the integer engine on Shi et al.'s radar ConvLSTM encoder-forecaster.

``radar-convlstm-3x3-64-64`` with per-channel peepholes on 64 x 64 frames (a 32 x 32 x 4 grid
after 2 x 2 patches; random weights, seed 0), compressed to 10% density over 4 PEs with the
default ranges, then one forecast (5 frames in, 15 out) of ``--batch`` random sequences:

* the integer engine (``lstmforge.engine.substitute``, fast backend): every convolution
  lowered to a sparse matrix times patch vectors, one batched call per layer and frame;
* the dense float model in PyTorch (``torch.nn.functional.conv2d``), the baseline.

With ``--checkpoint CKPT --artifact X.lfz`` (a trained nowcast model and its artifact, e.g.
``X-retrained.ckpt`` from ``compress --retrain-epochs``) the same two run on the first
``--batch`` test sequences of the checkpoint's data instead: trained weights and real inputs
make more rows need the accumulator's bound checks than random ones do.

One thread; the two are run in turn ``--repeats`` times and each keeps its best run.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_engine_convlstm.py [--batch 2]
[--checkpoint CKPT --artifact X.lfz]``.
Prints one JSON object; results go to docs/benchmarks.md by hand with the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from arguments import positive_int
from lstmforge.compress import compress_model
from lstmforge.engine import substitute
from lstmforge.tasks.nowcast.configs import build_model

ARCH, FRAME, IN_LEN, OUT_LEN, DENSITY, PES = "radar-convlstm-3x3-64-64", 64, 5, 15, 0.1, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--checkpoint", help="a trained nowcast checkpoint (with --artifact)")
    parser.add_argument("--artifact", help="its .lfz artifact")
    args = parser.parse_args()
    if (args.checkpoint is None) != (args.artifact is None):
        parser.error("--checkpoint and --artifact go together")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = OUT_LEN
    if args.checkpoint:
        from lstmforge.compress import load
        from lstmforge.tasks.nowcast.spec import build_datamodule, load_module

        module = load_module(args.checkpoint)
        datamodule = build_datamodule(dict(module.hparams), None)
        datamodule.setup("test")
        past, future = next(iter(datamodule.test_dataloader()))
        past, steps = past[: args.batch], future.shape[1]
        dense, engine = module.eval(), substitute(module, load(args.artifact))
        run = "forecast"
    else:
        dense = build_model(ARCH, FRAME, peephole="channel").eval()
        engine = substitute(dense, compress_model(dense, density=DENSITY, num_pes=PES))
        past = torch.rand(args.batch, IN_LEN, 4, FRAME // 2, FRAME // 2)  # 2 x 2 patches
        run = "forward"

    def forecast(model):
        with torch.no_grad():
            getattr(model, run)(past, steps)

    paths = {"dense torch float32": dense, "integer engine (fast)": engine}
    for model in paths.values():
        forecast(model)  # compile the kernels, build the engine's plans
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(args.repeats):
        for name, model in paths.items():
            start = time.perf_counter()
            forecast(model)
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "model": args.checkpoint or f"{ARCH}, random weights",
                "batch": args.batch,
                "frames": IN_LEN + OUT_LEN,
                "seconds_per_forecast": best,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
