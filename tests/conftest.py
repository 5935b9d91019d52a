"""Test-wide settings: one torch thread per worker (the suite runs with ``pytest -n 2``)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
