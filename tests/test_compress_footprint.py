"""Pointer width: one function sizes the footprint's pointer memory and the simulator's check."""

import numpy as np
import pytest
import torch

from lstmforge.compress import compress_model, footprint
from lstmforge.compress.csc import PECSC, pointer_bits
from lstmforge.errors import InputError
from lstmforge.hw import simulate
from lstmforge.hw.sim.config import load_preset
from lstmforge.nn import LSTM


def _pe(lengths):
    return PECSC(
        np.ones(sum(lengths), np.int16),
        np.zeros(sum(lengths), np.uint8),
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
    )


def test_pointer_bits_fit_the_longest_column_of_any_pe():
    assert pointer_bits([_pe([0, 0])]) == 1  # an empty matrix still has 1-bit words
    assert pointer_bits([_pe([1, 0])]) == 1
    assert pointer_bits([_pe([2, 3]), _pe([0, 1])]) == 2
    assert pointer_bits([_pe([3, 3]), _pe([4, 0])]) == 3
    assert pointer_bits([_pe([15]), _pe([16])]) == 5


@pytest.fixture(scope="module")
def lstm_artifact():
    torch.manual_seed(0)
    return compress_model(LSTM(8, 32, proj_size=16), density=0.25, num_pes=4)


def test_simulator_rejects_pointer_words_narrower_than_the_columns(lstm_artifact):
    cm = lstm_artifact
    need = max(m.pointer_bits for m in cm.blocks[0].matrices.values())
    config = load_preset("ese-ku060").replace(channels=1, pes_per_channel=4)
    with pytest.raises(InputError, match=f"pointer_bits={need - 1}.*{need}-bit"):
        simulate(cm, config.replace(pointer_bits=need - 1), 2, functional=False)
    assert simulate(cm, config.replace(pointer_bits=need), 2, functional=False).to_dict()


def test_footprint_reports_pointer_memory_per_matrix(lstm_artifact):
    rows = footprint(lstm_artifact)["matrices"]
    for name, m in lstm_artifact.blocks[0].matrices.items():
        assert rows[f"<root>:{name}"]["pointer_bits"] == pointer_bits(m.pes)
        assert rows[f"<root>:{name}"]["pointers_bits"] == 4 * m.shape[1] * m.pointer_bits
