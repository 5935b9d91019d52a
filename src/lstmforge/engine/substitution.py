"""``substitute``: a copy of a float model whose compressed submodules run from the artifact.

Task code evaluates an artifact with ``substitute(module, lstmforge.compress.load(path))``:
every submodule recorded in the manifest (by qualified name) is replaced by an engine-backed
module with the same ``forward`` signature and output shapes, so the task's own evaluation
runs unchanged.

* ``mode="integer"``: the integer datapath (:func:`lstmforge.engine.run_block`);
* ``mode="float-sparse"``: the module's own float weights with the artifact's sparsity
  pattern (pruned float): the difference to ``integer`` is the quantization loss, the
  difference to the dense model the pruning loss. The float weights are the module's, so
  for an artifact made after retraining the module must be the retrained one.

Before anything is replaced, each block is checked against its submodule (name, kind,
configuration) and the module's layers outside the artifact against the digest the artifact
records (:mod:`lstmforge.compress.host`): a model whose other layers differ (the dense
checkpoint of a retrained artifact) is refused. The digest leaves the blocks' own weights
out, and a model may have no layer outside the artifact (the speech model), so it is no
check of the weights ``float-sparse`` uses.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.compress.host import host_digest
from lstmforge.engine.fixed_point import SaturationCounter
from lstmforge.engine.runner import run_block
from lstmforge.errors import InputError

SUBSTITUTE_MODES = ("integer", "float-sparse")


class EngineModule(nn.Module):
    """Base of the engine-backed modules: holds the artifact, the block and a counter."""

    def __init__(self, cm: CompressedModel, block: Block, backend: str = "fast") -> None:
        super().__init__()
        self.cm, self.block, self.backend = cm, block, backend
        self.counter = SaturationCounter()

    def _run(self, x, state=None, **kwargs):
        return run_block(
            self.cm, self.block, x, state, backend=self.backend, counter=self.counter, **kwargs
        )


def _tensor(array: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(array, dtype=like.dtype, device=like.device)


class EngineLSTM(EngineModule):
    """Drop-in for :class:`lstmforge.nn.LSTM`: ``forward(x, state=None, lengths=None)``."""

    def forward(self, x, state=None, lengths=None):
        if isinstance(x, PackedSequence):
            padded, packed_lengths = pad_packed_sequence(x, batch_first=True)
            y, (h_n, c_n) = self._run(padded, state, lengths=packed_lengths)
            y_tm, order = _tensor(y, padded).transpose(0, 1), x.sorted_indices
            if order is not None:
                y_tm, packed_lengths = y_tm[:, order], packed_lengths[order]
            data = pack_padded_sequence(y_tm, packed_lengths).data
            packed = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
            return packed, (_tensor(h_n, padded), _tensor(c_n, padded))
        batch_first = self.block.config["batch_first"]
        seq = x if batch_first else x.transpose(0, 1)
        y, (h_n, c_n) = self._run(seq, state, lengths=lengths)
        y = _tensor(y, x)
        return (y if batch_first else y.transpose(0, 1)), (_tensor(h_n, x), _tensor(c_n, x))


class EngineConvLSTM(EngineModule):
    """Drop-in for :class:`lstmforge.nn.ConvLSTM`: ``forward(x, state=None, steps=None)``."""

    def forward(self, x, state=None, steps=None):
        batch_first = self.block.config["batch_first"]
        seq = x if (x is None or batch_first) else x.transpose(0, 1)
        like = x if x is not None else state[0][0]
        y, finals = self._run(seq, state, steps=steps)
        y = _tensor(y, like)
        return (y if batch_first else y.transpose(0, 1)), [
            (_tensor(h, like), _tensor(c, like)) for h, c in finals
        ]


class EngineLinear(EngineModule):
    """Drop-in for ``nn.Linear``: ``forward(x)``."""

    def forward(self, x):
        y, _ = self._run(x)
        return _tensor(y, x)


ENGINE_MODULES = {"lstm": EngineLSTM, "convlstm": EngineConvLSTM, "linear": EngineLinear}


def sparsity_masks(block: Block) -> dict[str, np.ndarray]:
    """Per parameter, the boolean mask of the weights the artifact kept (source shapes)."""
    return {
        name: (m.dense_codes() != 0).reshape(m.source_shape) for name, m in block.matrices.items()
    }


def _replace(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    if name == "":
        return new
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return model


def _canonical(config: dict) -> dict:
    """A block config without the optional keys that only restate a default (version 2)."""
    config = dict(config)
    if config.get("row_padding") == "zeros":
        del config["row_padding"]
    if "input_kernel_size" in config and config["input_kernel_size"] == config.get("kernel_size"):
        del config["input_kernel_size"]
    return config


def _check_topology(block: Block, original: nn.Module) -> None:
    """The artifact's block must describe ``original`` (its kind, sizes, kernels, padding, peepholes)."""
    from lstmforge.compress.compressor import block_config
    from lstmforge.nn import LSTM, ConvLSTM

    expected = {"lstm": LSTM, "convlstm": ConvLSTM, "linear": nn.Linear}[block.kind]
    if not isinstance(original, expected):
        raise InputError(
            f"artifact block {block.name!r} is a {block.kind} block, the module has a "
            f"{type(original).__name__} there"
        )

    def plain(value) -> str:
        return json.dumps(value, sort_keys=True)

    mine, theirs = _canonical(block_config(original, block.kind)), _canonical(block.config)
    differ = sorted(
        k for k in mine.keys() | theirs.keys() if plain(mine.get(k)) != plain(theirs.get(k))
    )
    if differ:
        detail = ", ".join(
            f"{k}: artifact {plain(theirs.get(k))}, module {plain(mine.get(k))}" for k in differ
        )
        raise InputError(
            f"artifact block {block.name!r} was compressed from another model ({detail})"
        )


def _check_host(module: nn.Module, cm: CompressedModel) -> None:
    """Refuse a host model whose layers outside the artifact are not the ones it was made
    with (:mod:`lstmforge.compress.host`); artifacts without a recorded digest pass."""
    recorded = cm.settings.get("host_digest")
    if recorded is None or recorded == host_digest(module, (b.name for b in cm.blocks)):
        return
    made_from = cm.settings.get("retrained_checkpoint") or cm.settings.get("checkpoint")
    advice = (
        f"evaluate it with the checkpoint it was made from, {made_from}"
        if made_from
        else "substitute it into the model it was compressed from"
    )
    raise InputError(
        f"the artifact was compressed from a {cm.settings.get('source_model', 'model')} whose "
        "layers outside the artifact differ from this model's (fine-tuned by `compress "
        f"--retrain-epochs`, or another checkpoint): {advice}"
    )


def substitute(
    module: nn.Module, cm: CompressedModel, mode: str = "integer", backend: str = "fast"
) -> nn.Module:
    """A deep copy of ``module`` with every compressed submodule replaced (module docstring)."""
    if mode not in SUBSTITUTE_MODES:
        raise InputError(f"substitute mode: expected one of {SUBSTITUTE_MODES}, got {mode!r}")
    originals = dict(module.named_modules())
    for block in cm.blocks:  # the blocks' own checks first: they name what differs
        if block.name not in originals:
            raise InputError(
                f"artifact block {block.name!r}: no such submodule in {type(module).__name__}"
            )
        _check_topology(block, originals[block.name])
    _check_host(module, cm)
    model = copy.deepcopy(module)
    names = dict(model.named_modules())
    for block in cm.blocks:
        original = names[block.name]
        if mode == "float-sparse":
            with torch.no_grad():
                for pname, mask in sparsity_masks(block).items():
                    param = getattr(original, pname)
                    if tuple(param.shape) != mask.shape:
                        raise InputError(
                            f"artifact block {block.name!r} {pname}: shape {list(mask.shape)}, module has {list(param.shape)}"
                        )
                    param.mul_(torch.as_tensor(mask, dtype=param.dtype, device=param.device))
        else:
            model = _replace(model, block.name, ENGINE_MODULES[block.kind](cm, block, backend))
    return model.eval()


def saturation_counts(model: nn.Module) -> dict[str, int]:
    """Saturation counts summed over every engine-backed submodule of ``model``."""
    total = SaturationCounter()
    for sub in model.modules():
        if isinstance(sub, EngineModule):
            total.update(sub.counter)
    return dict(total)
