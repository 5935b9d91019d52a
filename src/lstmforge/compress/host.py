"""The float layers an artifact runs beside: a digest that ties a ``.lfz`` to its host model.

A :class:`~lstmforge.compress.artifact.CompressedModel` holds the recurrent stacks (and the
output layer ESE runs on the accelerator); every other layer of the task model (a nowcaster's
1 x 1 output convolution, LE-ConvMN's head, normalisation buffers) stays float in the
checkpoint it is substituted into. Fine-tuning during ``compress --retrain-epochs`` changes
those layers too, so an artifact made from a retrained model must run with that model, not
with the dense checkpoint it started from. :func:`host_digest` fingerprints the layers outside
the artifact; :func:`~lstmforge.compress.compressor.compress_model` records it in
``settings["host_digest"]`` and :func:`~lstmforge.engine.substitute` refuses a host whose
digest differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn


def _inside(key: str, block_names: set[str]) -> bool:
    """Whether state-dict entry ``key`` belongs to one of the compressed submodules."""
    if "" in block_names:  # the whole module is one compressed block
        return True
    return any(key.startswith(f"{name}.") for name in block_names)


def host_digest(module: nn.Module, block_names: Iterable[str]) -> str:
    """SHA-256 of ``module``'s state-dict entries outside ``block_names`` (names, dtypes,
    shapes and bytes, in key order); the compressed blocks' own weights are left out."""
    names = set(block_names)
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        if _inside(key, names):
            continue
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
