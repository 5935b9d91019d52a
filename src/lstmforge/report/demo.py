"""The end-to-end demo: synthetic speech -> LSTMP -> compressed `.lfz` -> engine -> ESE model.

Steps (each calls the stage's own library entry point):

1. generate a small synthetic speech corpus and train the ``small`` LSTMP acoustic model
   (:func:`lstmforge.tasks.speech.train.train_speech`, Sak et al. 2014);
2. compress it with gradual load-balance-aware pruning and retraining, 12-bit quantization and
   CSC encoding, and score dense, pruned-float and integer-engine models by phone error rate
   (:func:`lstmforge.compress.retrain.prune_retrain`, :func:`lstmforge.compress.compress_model`,
   :func:`lstmforge.engine.substitute`; ESE §3-4); compress the dense model once more with plain
   magnitude pruning to show what balancing buys;
3. run both artifacts on the cycle-level accelerator model (:func:`lstmforge.hw.simulate`) on a
   test utterance, and check the simulated outputs against the engine's bit for bit;
4. write ``summary.json`` and the HTML report built from it
   (:func:`lstmforge.report.page.write_report`, the same sections as ``lstmforge report``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmforge.io import write_json
from lstmforge.report.page import write_report
from lstmforge.report.runs import Run

TRAIN_BATCH = 8
TRAIN_LR = 5e-3
"""Batch size and Adam step of the demo's training: with these the small LSTMP leaves the
all-blank CTC plateau within a few epochs on the 300-utterance corpus (docs/results.md)."""


def run_demo(
    out: Path,
    *,
    utterances: int = 300,
    epochs: int = 10,
    density: float = 0.25,
    retrain_epochs: int = 1,
    prune_steps: int = 3,
    num_pes: int = 8,
    seed: int = 0,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the summary (also written to ``out/summary.json``).

    ``retrain_epochs`` epochs of fine-tuning follow each of ``prune_steps`` gradual pruning steps
    (0: prune once without retraining).
    """
    from lstmforge.compress import compress_model
    from lstmforge.compress.retrain import prune_retrain
    from lstmforge.data.speech_synthetic import generate_corpus
    from lstmforge.engine import run_block, substitute
    from lstmforge.hw import load_preset, simulate
    from lstmforge.tasks import get_task
    from lstmforge.tasks.speech.train import train_speech
    from lstmforge.training import TrainConfig

    out = Path(out)
    figures = out / "figures"
    started = time.perf_counter()

    say(f"[1/4] synthetic corpus ({utterances} utterances) and LSTMP training ({epochs} epochs)")
    corpus = out / "speech" / "corpus"  # the demo's own: replaced when --utterances changes
    generate_corpus(corpus, utterances, seed=0, replace=True)
    fit = train_speech(
        TrainConfig(
            out_dir=out / "speech",
            max_epochs=epochs,
            seed=seed,
            patience=None,
            progress=progress,
            restart=True,  # a demo run into the same --out trains afresh
        ),
        data_dir=corpus,
        config="small",
        corpus_utterances=utterances,
        batch_size=TRAIN_BATCH,
        learning_rate=TRAIN_LR,
    )
    checkpoint = fit.best_checkpoint or fit.last_checkpoint
    spec = get_task("speech")
    module = spec.load_module(checkpoint)
    datamodule = spec.build_datamodule(dict(module.hparams), None)
    datamodule.setup("fit")
    dense = copy.deepcopy(module)
    calibration = _calibration_batch(datamodule)

    say(
        f"[2/4] load-balance-aware pruning to density {density} over {num_pes} PEs "
        f"({prune_steps} steps x {retrain_epochs} retraining epochs), 12-bit quantization, "
        "CSC encoding; PER of dense, pruned float and integer-engine models"
    )
    retraining = []
    if retrain_epochs > 0:
        steps = prune_retrain(
            module,
            datamodule,
            density=density,
            num_pes=num_pes,
            balanced=True,
            steps=prune_steps,
            epochs_per_step=retrain_epochs,
            out_dir=out / "retrain",
            seed=seed,
            progress=progress,
        )
        retraining = [vars(step) for step in steps]
    artifacts = {
        "balanced": compress_model(
            module, density=density, num_pes=num_pes, balanced=True, calibration=calibration
        ),
        "unbalanced": compress_model(  # the dense model, plain magnitude pruning, no retraining
            dense, density=density, num_pes=num_pes, balanced=False, calibration=calibration
        ),
    }
    for name, cm in artifacts.items():
        cm.save(out / f"speech-{name}.lfz")
    datamodule.setup("test")
    with torch.no_grad():
        per = {
            "dense_float": spec.evaluate(dense, datamodule)["per"],
            "pruned_float": spec.evaluate(
                substitute(module, artifacts["balanced"], mode="float-sparse"), datamodule
            )["per"],
            "pruned_integer": spec.evaluate(
                substitute(module, artifacts["balanced"], mode="integer"), datamodule
            )["per"],
        }

    utterance = datamodule.split_data("test")[0][0].numpy()[None].astype(np.float64)
    say(
        f"[3/4] cycle-level ESE model: one test utterance ({utterance.shape[1]} frames), "
        f"{num_pes} PEs per channel"
    )
    config = load_preset("ese-ku060").replace(pes_per_channel=num_pes)
    sims = {name: simulate(cm, config, utterance) for name, cm in artifacts.items()}
    engine_out = utterance
    for block in artifacts["balanced"].blocks:
        if block.kind == "lstm":
            engine_out, _ = run_block(artifacts["balanced"], block, engine_out)
    bit_exact = bool(np.array_equal(sims["balanced"].outputs, engine_out))
    say(f"      simulator output equals the integer engine's bit for bit: {bit_exact}")

    say("[4/4] report")
    summary = {
        "seconds": time.perf_counter() - started,
        "training": {"epochs": fit.epochs_run, "seconds": fit.seconds, "history": fit.history},
        "retraining": retraining,
        "per": per,
        "density": density,
        "num_pes": num_pes,
        "simulator_matches_engine": bit_exact,
        "pe_nonzeros": {name: _pe_nonzeros(cm) for name, cm in artifacts.items()},
        "simulation": {name: s.to_dict() for name, s in sims.items()},
    }
    report = write_report(
        [Run("summary.json", "demo", summary)],
        out / "report.html",
        "lstmforge demo: speech LSTMP on a simulated ESE",
        figures,
    )
    summary["report"] = str(report)
    write_json(out / "summary.json", summary)
    return summary


def _calibration_batch(datamodule: Any, count: int = 8) -> torch.Tensor:
    """Padded features of the first ``count`` training utterances (activation ranges)."""
    from lstmforge.tasks.speech.datamodule import collate

    data = datamodule.split_data("train")
    return collate([data[i] for i in range(min(count, len(data)))])[0]


def _pe_nonzeros(cm: Any) -> list[int]:
    """Nonzero weights per PE over every LSTM matrix of ``cm``."""
    counts = np.zeros(cm.num_pes, dtype=np.int64)
    for block in cm.blocks:
        if block.kind == "lstm":
            for matrix in block.matrices.values():
                counts += np.asarray(matrix.nonzeros_per_pe)
    return counts.tolist()
