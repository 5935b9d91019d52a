"""The end-to-end demo: synthetic speech -> LSTMP -> compressed `.lfz` -> engine -> ESE model.

Steps (each calls the stage's own library entry point):

1. generate a small synthetic speech corpus and train the ``small`` LSTMP acoustic model
   (:func:`lstmforge.tasks.speech.train.train_speech`, Sak et al. 2014);
2. score the dense model (phone error rate, :data:`lstmforge.tasks.speech.spec.SPEC`);
3. compress it with load-balance-aware pruning, 12-bit quantization and CSC encoding
   (:func:`lstmforge.compress.compress_model`, ESE §3-4), and once more without balancing to show
   what balancing buys; write the ``.lfz``;
4. score the compressed model on the integer engine (:func:`lstmforge.engine.substitute`);
5. run both artifacts on the cycle-level accelerator model (:func:`lstmforge.hw.simulate`) on a
   test utterance, and check the simulated outputs against the engine's bit for bit;
6. write one HTML report and ``summary.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmforge.io import write_json
from lstmforge.report import html, plots


def _calibration_batch(datamodule: Any, count: int = 8) -> torch.Tensor:
    """Padded features of the first ``count`` training utterances."""
    from lstmforge.tasks.speech.datamodule import collate

    data = datamodule.split_data("train")
    return collate([data[i] for i in range(min(count, len(data)))])[0]


def run_demo(
    out: Path,
    *,
    utterances: int = 300,
    epochs: int = 10,
    density: float = 0.3,
    num_pes: int = 8,
    seed: int = 0,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the summary (also written to ``out/summary.json``)."""
    from lstmforge.compress import compress_model
    from lstmforge.engine import run_block, substitute
    from lstmforge.hw import load_preset, simulate
    from lstmforge.tasks import get_task
    from lstmforge.tasks.speech.train import train_speech
    from lstmforge.training import TrainConfig

    out = Path(out)
    figures = out / "figures"
    started = time.perf_counter()
    spec = get_task("speech")

    say(f"[1/5] synthetic corpus ({utterances} utterances) and LSTMP training ({epochs} epochs)")
    fit = train_speech(
        TrainConfig(
            out_dir=out / "speech", max_epochs=epochs, seed=seed, patience=None, progress=progress
        ),
        config="small",
        corpus_utterances=utterances,
    )
    module = spec.load_module(fit.best_checkpoint or fit.last_checkpoint)
    datamodule = spec.build_datamodule(dict(module.hparams), None)

    say("[2/5] dense model: phone error rate on the test split")
    dense = spec.evaluate(module, datamodule)

    say(f"[3/5] compression to density {density} over {num_pes} PEs (balanced and unbalanced)")
    calibration = _calibration_batch(datamodule)
    artifacts = {}
    for balanced in (True, False):
        cm = compress_model(
            module, density=density, num_pes=num_pes, balanced=balanced, calibration=calibration
        )
        name = "balanced" if balanced else "unbalanced"
        cm.save(out / f"speech-{name}.lfz")
        artifacts[name] = cm

    say("[4/5] compressed model on the integer engine: phone error rate")
    compressed = spec.evaluate(substitute(module, artifacts["balanced"], "integer"), datamodule)

    utterance = datamodule.split_data("test")[0][0].numpy()[None].astype(np.float64)
    say(
        f"[5/5] cycle-level ESE model: one test utterance ({utterance.shape[1]} frames), {num_pes} PEs per channel"
    )
    config = load_preset("ese-ku060").replace(pes_per_channel=num_pes)
    sims = {name: simulate(cm, config, utterance) for name, cm in artifacts.items()}
    engine_out = utterance
    for block in artifacts["balanced"].blocks:
        if block.kind == "lstm":
            engine_out, _ = run_block(artifacts["balanced"], block, engine_out)
    bit_exact = bool(np.array_equal(sims["balanced"].outputs, engine_out))
    say(f"      simulator output equals the integer engine's bit for bit: {bit_exact}")

    summary = {
        "seconds": time.perf_counter() - started,
        "training": {"epochs": fit.epochs_run, "seconds": fit.seconds, "history": fit.history},
        "per_dense": dense["per"],
        "per_compressed_integer": compressed["per"],
        "simulator_matches_engine": bit_exact,
        "density": density,
        "num_pes": num_pes,
        "simulation": {name: s.to_dict() for name, s in sims.items()},
    }
    summary["report"] = str(_write_report(out, figures, summary, artifacts, sims))
    write_json(out / "summary.json", summary)
    return summary


def _load_deviation(cm: Any) -> list[float]:
    """Nonzero weights per PE over every LSTM matrix, in percent above or below the mean PE."""
    counts = np.zeros(cm.num_pes, dtype=np.int64)
    for block in cm.blocks:
        if block.kind == "lstm":
            for matrix in block.matrices.values():
                counts += np.asarray(matrix.nonzeros_per_pe)
    return (100.0 * (counts / counts.mean() - 1.0)).tolist()


def _write_report(out: Path, figures: Path, summary: dict, artifacts: dict, sims: dict) -> Path:
    history = summary["training"]["history"]
    curves = {
        key: ([h["epoch"] for h in history if key in h], [h[key] for h in history if key in h])
        for key in ("train_loss", "val_loss")
        if any(key in h for h in history)
    }
    fig_curve = plots.curve_plot(curves, "epoch", "CTC loss", figures / "training.png")
    fig_load = plots.bar_per_pe(
        {name: _load_deviation(cm) for name, cm in artifacts.items()},
        "nonzeros vs mean PE (%)",
        "per-PE load: load-balance-aware vs plain magnitude pruning",
        figures / "pe_load.png",
    )
    fig_util = plots.bar_per_pe(
        {name: s.pe_utilisation for name, s in sims.items()},
        "utilisation",
        "per-PE utilisation on the simulated accelerator",
        figures / "pe_utilisation.png",
    )
    balanced = sims["balanced"]
    fig_time = plots.timeline_plot(
        balanced.timeline, balanced.timeline_frame, figures / "timeline.png"
    )
    per_rows = [
        ("dense float", summary["per_dense"]),
        (
            f"compressed, integer engine (density {summary['density']})",
            summary["per_compressed_integer"],
        ),
    ]
    sim_rows = [
        (
            name,
            s.latency_us_per_frame,
            s.cycles_per_frame,
            s.pe_utilisation_mean,
            s.cycle_breakdown["load_imbalance"],
            s.cycle_breakdown["dependency"],
            s.cycle_breakdown["memory_bandwidth"],
            s.gops_sparse,
            s.energy_j_per_frame["total"] * 1e6,
        )
        for name, s in sims.items()
    ]
    sections = [
        ("Phone error rate (test split)", html.table(["model", "PER %"], per_rows)),
        ("Training", html.figure(fig_curve, "CTC loss per epoch")),
        ("Load balance", html.figure(fig_load, "nonzero weights per PE")),
        (
            "Simulated accelerator (ese-ku060 preset)",
            html.table(
                [
                    "pruning",
                    "µs/frame",
                    "cycles/frame",
                    "PE utilisation",
                    "imbalance",
                    "dependency",
                    "memory",
                    "GOP/s",
                    "µJ/frame",
                ],
                sim_rows,
            )
            + html.figure(fig_util, "per-PE utilisation")
            + html.figure(fig_time, "one time step: SpMV passes and element-wise blocks per PE"),
        ),
        (
            "Run",
            html.table(
                ["item", "value"],
                [("total seconds", summary["seconds"]), ("epochs", summary["training"]["epochs"])],
            ),
        ),
    ]
    return html.write_page(
        out / "report.html", "lstmforge demo: speech LSTMP on a simulated ESE", sections
    )
