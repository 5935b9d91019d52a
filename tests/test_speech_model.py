"""The acoustic model: ESE's configuration, output distribution, causality (padding-safe)."""

import pytest
import torch

from lstmforge.errors import InputError
from lstmforge.nn import LSTM
from lstmforge.tasks.speech.model import NUM_CLASSES, AcousticModel, named_config


def _build(name: str) -> AcousticModel:
    chosen = named_config(name)
    return AcousticModel(
        chosen.features.input_size,
        chosen.model.hidden_size,
        chosen.model.proj_size,
        chosen.model.num_layers,
        chosen.model.dropout,
    )


def test_google_lstm_matches_ese_sizes():
    model = _build("google-lstm")
    assert named_config("google-lstm").features.input_size == 153
    first = model.layers[0]
    assert isinstance(first, LSTM) and first.peephole and first.proj_size == 512
    weights = sum(
        getattr(first, name).numel() for name in ("weight_ih_l0", "weight_hh_l0", "weight_hr_l0")
    )
    assert weights == 4096 * 153 + 4096 * 512 + 512 * 1024  # ESE: ~3.25 M weights per frame
    assert len(model.layers) == 2 and model.output.in_features == 512
    assert model.output.out_features == NUM_CLASSES == 40


def test_outputs_are_log_probabilities_and_causal():
    torch.manual_seed(0)
    model = _build("small").eval()
    x = torch.randn(2, 30, named_config("small").features.input_size)
    with torch.no_grad():
        log_probs = model(x)
        # changing later frames (e.g. batch padding) leaves earlier outputs unchanged
        changed = x.clone()
        changed[:, 20:] = 0.0
        prefix = model(changed)[:, :20]
    assert log_probs.shape == (2, 30, NUM_CLASSES)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 30))
    torch.testing.assert_close(prefix, log_probs[:, :20])


def test_unknown_configuration_is_an_input_error():
    with pytest.raises(InputError, match="google-lstm"):
        named_config("huge")
