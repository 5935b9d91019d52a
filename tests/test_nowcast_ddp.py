"""2-process DDP on CPU (gloo) through the real CLI gives the same model as one process.

Lightning's ``ddp`` strategy re-launches the command for rank 1, so it is run as a subprocess
(``python -m lstmforge.cli``). The effective batch is the same in both runs: one process with
batch 4 against two processes with batch 2 each. With ``--no-shuffle`` the nowcast DataModule's
own ``DistributedSampler`` gives rank 0 the even and rank 1 the odd sequences, so every DDP step
averages the gradients of exactly the 4 sequences of the single-process step; the weights and
therefore the test metrics agree up to floating-point summation order.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from lstmforge.tasks import get_task
from lstmforge.training import load_checkpoint

TINY = [
    "--dataset", "radar", "--arch", "tiny-convlstm", "--frame-size", "16", "--in-len", "3",
    "--out-len", "3", "--num-train", "8", "--num-val", "4", "--num-test", "4", "--epochs", "2",
    "--accelerator", "cpu", "--no-shuffle", "--seed", "3",
]  # fmt: skip


def _train(out, devices, batch_size):
    env = os.environ | {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    args = [sys.executable, "-m", "lstmforge.cli", "nowcast", "train", "--out", str(out), *TINY]
    args += ["--devices", str(devices), "--batch-size", str(batch_size)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    single = _train(tmp_path / "single", devices=1, batch_size=4)
    ddp = _train(tmp_path / "ddp", devices=2, batch_size=2)
    assert (tmp_path / "ddp" / "train_config.json").read_text().count('"world_size": 2') == 1
    weights_single = load_checkpoint(single, task="nowcast")["state_dict"]
    weights_ddp = load_checkpoint(ddp, task="nowcast")["state_dict"]
    task = get_task("nowcast")
    for name, value in weights_single.items():
        torch.testing.assert_close(weights_ddp[name], value, atol=1e-5, rtol=1e-4)
    scores = []
    for checkpoint in (single, ddp):
        module = task.load_module(checkpoint)
        scores.append(task.evaluate(module, task.build_datamodule(module.hparams, None)))
    for key in ("mse", "csi_0.5", "correlation"):
        assert scores[1][key] == pytest.approx(scores[0][key], rel=1e-3, abs=1e-4)
    # the same number of optimiser steps: 8 sequences / effective batch 4 x 2 epochs
    for run in ("single", "ddp"):
        history = json.loads((tmp_path / run / "history.json").read_text())["epochs"]
        assert history[-1]["step"] == 4.0
