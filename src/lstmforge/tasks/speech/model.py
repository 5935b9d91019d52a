"""The LSTMP acoustic model ("Google LSTM") and its named configurations.

A stack of :class:`lstmforge.nn.LSTM` layers with peepholes and a recurrent projection
(H. Sak, A. Senior, F. Beaufays, "Long short-term memory recurrent neural network
architectures for large scale acoustic modeling", Interspeech 2014), followed by one linear
output layer over the 39 phones plus the CTC blank (index 0; A. Graves et al., "Connectionist
temporal classification", ICML 2006). ESE (Han et al., FPGA 2017) runs exactly these two parts,
the LSTM layers and the output layer, on the accelerator: ``layers`` (a ``ModuleList`` of
one-layer LSTMs, so each layer can be timed and replaced alone) and ``output`` (``nn.Linear``).
Their ``forward`` signatures are all that :meth:`AcousticModel.forward` uses, so engine-backed
replacements (:func:`lstmforge.engine.substitute`) drop in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lstmforge.data.phones import PHONES
from lstmforge.errors import InputError
from lstmforge.nn import LSTM
from lstmforge.tasks.speech.features import FeatureConfig

NUM_CLASSES = len(PHONES) + 1
"""Output classes: the CTC blank (index 0) and the 39 phones (index i + 1 for PHONES[i])."""


@dataclass(frozen=True)
class ModelConfig:
    """Size of the acoustic model."""

    hidden_size: int
    proj_size: int
    num_layers: int
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for hparams)."""
        return asdict(self)


@dataclass(frozen=True)
class NamedConfig:
    """A named model + feature configuration."""

    model: ModelConfig
    features: FeatureConfig
    description: str


CONFIGS: dict[str, NamedConfig] = {
    "google-lstm": NamedConfig(
        ModelConfig(hidden_size=1024, proj_size=512, num_layers=2),
        FeatureConfig(n_mels=51, deltas=2),
        "ESE's Google LSTMP: 153 inputs (51 log-mel + Δ + ΔΔ), 2 x 1024 cells, 512 projection",
    ),
    "cpu": NamedConfig(
        ModelConfig(hidden_size=256, proj_size=128, num_layers=2, dropout=0.1),
        FeatureConfig(n_mels=40, deltas=2, stack=3, skip=3),
        "CPU model: 120 features stacked x3 at 33 frames/s, 2 x 256 cells, 128 projection",
    ),
    "small": NamedConfig(
        ModelConfig(hidden_size=128, proj_size=64, num_layers=2),
        FeatureConfig(n_mels=40, deltas=2, stack=3, skip=3),
        "demo size: 2 x 128 cells, 64 projection; trains in minutes on 2 cores",
    ),
    "tiny": NamedConfig(
        ModelConfig(hidden_size=32, proj_size=16, num_layers=1),
        FeatureConfig(n_mels=16, deltas=1, stack=3, skip=3),
        "plumbing checks: 1 x 32 cells, 16 projection",
    ),
}
"""Named configurations, selectable with ``speech train --config NAME``."""


def named_config(name: str) -> NamedConfig:
    """The configuration called ``name`` (InputError listing the names otherwise)."""
    if name not in CONFIGS:
        raise InputError(f"config: unknown name {name!r}; expected one of {', '.join(CONFIGS)}")
    return CONFIGS[name]


class AcousticModel(nn.Module):
    """LSTMP layers + linear output layer; ``forward`` gives CTC log-probabilities.

    Args:
        input_size: feature values per step.
        hidden_size / proj_size / num_layers: LSTMP size per layer (peepholes on).
        dropout: dropout between layers and before the output layer (training only).
    """

    def __init__(
        self, input_size: int, hidden_size: int, proj_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        layer_inputs = [input_size] + [proj_size] * (num_layers - 1)
        self.layers = nn.ModuleList(
            LSTM(size, hidden_size, num_layers=1, proj_size=proj_size, peephole=True)
            for size in layer_inputs
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(proj_size, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        """[B, T, input_size] features -> [B, T, NUM_CLASSES] log-probabilities.

        The model is causal (unidirectional), so padding at the end of a batch leaves the
        valid steps unchanged.
        """
        for layer in self.layers:
            x, _ = layer(x)
            x = self.dropout(x)
        return torch.log_softmax(self.output(x), dim=-1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
