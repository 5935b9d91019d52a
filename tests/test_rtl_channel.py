# amaranth: UnusedElaboratable=no
"""One ESE channel (PEs + activation queues + element-wise unit) against ``engine.run``."""

import numpy as np
import pytest
import torch

pytest.importorskip("amaranth")

from lstmforge.compress import compress_model  # noqa: E402
from lstmforge.engine import run  # noqa: E402
from lstmforge.engine.activation_units import ActivationConfig  # noqa: E402
from lstmforge.engine.fixed_point import quantize  # noqa: E402
from lstmforge.errors import InputError  # noqa: E402
from lstmforge.hw.rtl.channel import LSTMChannel  # noqa: E402
from lstmforge.hw.rtl.channel_simulation import run_lstm_channel  # noqa: E402
from lstmforge.nn import LSTM  # noqa: E402


@pytest.mark.parametrize(
    ("inputs", "hidden", "num_pes", "peephole", "activation"),
    [
        (3, 4, 2, True, ActivationConfig()),
        (4, 5, 3, False, ActivationConfig(kind="plan")),  # 20 gate rows over 3 PEs: uneven
    ],
    ids=["peephole-lut-2pe", "plain-plan-3pe"],
)
def test_channel_steps_match_engine(inputs, hidden, num_pes, peephole, activation):
    torch.manual_seed(0)
    model = LSTM(inputs, hidden, peephole=peephole)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.7)
    x = torch.randn(1, 4, inputs)
    h0, c0 = 0.5 * torch.randn(1, 1, hidden), torch.randn(1, 1, hidden)
    cm = compress_model(
        model, density=0.6, num_pes=num_pes, activation=activation, calibration=(x, (h0, c0))
    )
    block = cm.blocks[0]
    y, (_, c_n) = run(cm, x.numpy(), (h0.numpy(), c0.numpy()))

    fin, fout, fcell = (block.formats[k] for k in ("input", "l0.output", "l0.cell"))
    channel = LSTMChannel(cm, block)
    result = run_lstm_channel(
        channel,
        quantize(x.numpy()[0], fin),
        quantize(h0.numpy()[0, 0], fout),
        quantize(c0.numpy()[0, 0], fcell),
    )
    np.testing.assert_array_equal(result.hidden, quantize(y[0], fout))
    np.testing.assert_array_equal(result.cell, quantize(c_n[0, 0], fcell))
    assert np.any(result.hidden != 0)
    # every step takes the same time: two passes, read-back, element-wise unit
    assert len(set(result.cycles.tolist())) == 1


def test_channel_rejects_projection_and_stacks():
    for kwargs in ({"proj_size": 2}, {"num_layers": 2}):
        cm = compress_model(LSTM(3, 4, **kwargs), density=0.5, num_pes=2)
        with pytest.raises(InputError, match="one-layer LSTM without projection"):
            LSTMChannel(cm, cm.blocks[0])
