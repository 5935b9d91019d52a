"""The simulated channels compute exactly what the integer engine computes."""

import numpy as np
import pytest
import torch
from torch import nn

from lstmforge.compress import compress_model, load
from lstmforge.engine import run
from lstmforge.errors import InputError
from lstmforge.hw import load_preset, simulate
from lstmforge.nn import LSTM


class Stack(nn.Module):
    """Two one-layer LSTMP blocks in a row (the speech model's layout) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([LSTM(5, 12, proj_size=6), LSTM(6, 12, proj_size=6)])
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        for layer in self.layers:
            x, _ = layer(x)
        return self.head(x)


def _model(kind: str) -> nn.Module:
    if kind == "lstmp-2layer":
        return LSTM(5, 16, num_layers=2, proj_size=8)
    if kind == "lstm-no-peephole":
        return LSTM(5, 12, peephole=False)
    return Stack()


def _engine_lstm_output(cm, x):
    """The engine's output of the LSTM blocks (without a host-side linear head)."""
    if any(b.kind == "linear" for b in cm.blocks):
        y = x
        for block in cm.blocks:
            if block.kind == "lstm":
                from lstmforge.engine import run_block

                y, _ = run_block(cm, block, y)
        return y
    return run(cm, x)[0]


@pytest.mark.parametrize("kind", ["lstmp-2layer", "lstm-no-peephole", "stack"])
@pytest.mark.parametrize("density", [0.15, 0.5])
def test_bit_exact_with_the_engine(kind, density, tmp_path):
    torch.manual_seed(len(kind))
    model = _model(kind)
    with torch.no_grad():  # peepholes start at zero; give them values so they are exercised
        for name, param in model.named_parameters():
            if "weight_c" in name:
                param.uniform_(-0.5, 0.5)
    calibration = torch.randn(2, 12, 5)
    cm = compress_model(model, density=density, num_pes=4, calibration=calibration)
    cm = load(cm.save(tmp_path / "m.lfz"))
    x = np.random.default_rng(3).standard_normal((3, 12, 5)) * 2
    config = load_preset("ese-ku060").replace(pes_per_channel=4, channels=3)
    report = simulate(cm, config, x)
    expected = _engine_lstm_output(cm, x)
    assert report.outputs.shape == expected.shape
    np.testing.assert_array_equal(report.outputs, expected)
    assert np.abs(expected).max() > 0


def test_frames_as_a_count_use_seeded_inputs():
    torch.manual_seed(0)
    cm = compress_model(LSTM(4, 8, proj_size=4), density=0.5, num_pes=2)
    config = load_preset("ese-ku060").replace(pes_per_channel=2, channels=2)
    first, second = simulate(cm, config, 6), simulate(cm, config, 6)
    np.testing.assert_array_equal(first.outputs, second.outputs)
    assert first.outputs.shape == (2, 6, 4)
    assert first.to_dict()["frames"] == 6 and "outputs" not in first.to_dict()


def test_configuration_must_fit_the_artifact():
    torch.manual_seed(0)
    cm = compress_model(LSTM(4, 8, proj_size=4), density=0.5, num_pes=2)
    preset = load_preset("ese-ku060")
    with pytest.raises(InputError, match="interleaved over 2 PEs"):
        simulate(cm, preset, 3)
    fits = preset.replace(pes_per_channel=2)
    with pytest.raises(InputError, match="weight_bits=8"):
        simulate(cm, fits.replace(weight_bits=8), 3)
    with pytest.raises(InputError, match="onchip_weight_kib"):
        simulate(cm, fits.replace(weight_storage="onchip", onchip_weight_kib=0.01), 3)
    with pytest.raises(InputError, match=r"expected \[frames, 4\]"):
        simulate(cm, fits, np.zeros((3, 5)))
    with pytest.raises(InputError, match="frames: expected finite numbers"):
        simulate(cm, fits, np.full((3, 4), np.nan))
    with pytest.raises(InputError, match="channels"):
        simulate(cm, fits.replace(channels=1), np.zeros((2, 3, 4)))


def test_saturating_accumulation_matches_the_golden_per_pe_loop():
    from lstmforge.compress.artifact import SparseMatrix
    from lstmforge.engine.fixed_point import QFormat, SaturationCounter
    from lstmforge.engine.spmv import spmv_reference
    from lstmforge.hw.sim.functional import BroadcastSpMV

    rng = np.random.default_rng(0)
    codes = rng.integers(-2047, 2048, (12, 64)) * (rng.random((12, 64)) < 0.7)
    codes[0] = 2047  # row 0: 64 x 2047 x 32767 overflows 32 bits -> saturates
    codes[1] = -2047  # row 1 saturates downwards
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 4, codes.shape)
    x = rng.integers(-32768, 32768, (3, 64))
    x[0] = 32767
    ours, golden = SaturationCounter(), SaturationCounter()
    got = BroadcastSpMV()(matrix, x, ours, "acc")
    np.testing.assert_array_equal(got, spmv_reference(matrix, x, golden, "acc"))
    assert got[0, 0] == 2**31 - 1 and got[0, 1] == -(2**31)
    assert ours["acc"] == golden["acc"] > 0
    small = x // 256  # now no row can leave the range: the one-shot sparse product path
    np.testing.assert_array_equal(BroadcastSpMV()(matrix, small), spmv_reference(matrix, small))
    # int16 codes (as the engine hands a convolution's patches): |-32768| must not wrap
    wide = SparseMatrix.from_codes(np.full((1, 3), -32768), QFormat(16, 15), 1, (1, 3))
    narrow = np.full((1, 3), -32768, dtype=np.int16)
    ours, golden = SaturationCounter(), SaturationCounter()
    got = BroadcastSpMV()(wide, narrow, ours, "acc")
    np.testing.assert_array_equal(got, spmv_reference(wide, narrow, golden, "acc"))
    assert got[0, 0] == 2**31 - 1 and ours["acc"] == golden["acc"] == 2


def test_state_in_and_out_continues_bit_for_bit():
    torch.manual_seed(5)
    cm = compress_model(LSTM(5, 12, num_layers=2, proj_size=6), density=0.4, num_pes=4)
    config = load_preset("ese-ku060").replace(pes_per_channel=4, channels=2)
    x = np.random.default_rng(1).standard_normal((2, 10, 5))
    whole = simulate(cm, config, x)
    first = simulate(cm, config, x[:, :4])
    second = simulate(cm, config, x[:, 4:], state=first.final_state)
    np.testing.assert_array_equal(np.concatenate([first.outputs, second.outputs], 1), whole.outputs)
    y, (h, c) = run(cm, x[:, 4:], first.final_state)
    np.testing.assert_array_equal(second.outputs, y)
    np.testing.assert_array_equal(second.final_state[0], h)
    np.testing.assert_array_equal(second.final_state[1], c)
    with pytest.raises(InputError, match=r"expected h \[2, 2, 6\]"):
        simulate(cm, config, x, state=(np.zeros((1, 2, 6)), np.zeros((2, 2, 12))))


def test_convlstm_artifact_is_rejected_loudly():
    from lstmforge.nn import ConvLSTM

    torch.manual_seed(0)
    cm = compress_model(ConvLSTM(1, 4, 3, frame_size=(4, 4)), density=0.5, num_pes=2)
    config = load_preset("ese-ku060").replace(pes_per_channel=2)
    with pytest.raises(InputError, match=r"runs LSTM/LSTMP blocks; this model has \['convlstm'\]"):
        simulate(cm, config, 3)


def test_two_one_layer_blocks_time_like_one_two_layer_block():
    torch.manual_seed(4)
    two_layer = LSTM(5, 12, num_layers=2, proj_size=6)
    stack = nn.ModuleList([LSTM(5, 12, proj_size=6), LSTM(6, 12, proj_size=6)])
    with torch.no_grad():
        for k, layer in enumerate(stack):
            for name, param in layer.named_parameters():
                param.copy_(getattr(two_layer, name.replace("_l0", f"_l{k}")))
    config = load_preset("ese-ku060").replace(pes_per_channel=4, channels=1)
    one = simulate(compress_model(two_layer, density=0.4, num_pes=4), config, 7, functional=False)
    two = simulate(compress_model(stack, density=0.4, num_pes=4), config, 7, functional=False)
    assert one.model["nonzero_weights"] == two.model["nonzero_weights"]
    assert one.cycles_per_utterance == two.cycles_per_utterance
    assert one.stall_cycles_per_pe == two.stall_cycles_per_pe


@pytest.mark.parametrize(("model", "pes"), [((4, 8, 2), 4), ((3, 5, 3), 3), ((3, 4, 2), 16)])
def test_passes_narrower_than_the_fifo_run_bit_exact(model, pes):
    """A pass with fewer columns than the FIFO is deep (here W_hr with 2-3 columns, depth 8)."""
    torch.manual_seed(0)
    input_size, hidden, proj = model
    cm = compress_model(LSTM(input_size, hidden, proj_size=proj), density=0.4, num_pes=pes)
    config = load_preset("ese-ku060").replace(pes_per_channel=pes, channels=1)
    assert config.fifo_depth > max(input_size, proj) + 1
    x = np.random.default_rng(0).standard_normal((1, 4, input_size))
    report = simulate(cm, config, x)
    np.testing.assert_array_equal(report.outputs, run(cm, x)[0])


class _LinearBetween(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.middle, self.last = LSTM(3, 8), nn.Linear(8, 8), LSTM(8, 8)

    def forward(self, x):
        return self.last(self.middle(self.first(x)[0]))[0]


def test_a_layer_between_lstm_blocks_is_refused_not_skipped():
    torch.manual_seed(0)
    cm = compress_model(_LinearBetween(), density=0.5, num_pes=2)
    assert [b.kind for b in cm.blocks] == ["lstm", "linear", "lstm"]
    config = load_preset("ese-ku060").replace(pes_per_channel=2, channels=1)
    with pytest.raises(InputError, match=r"block 'middle' \(linear\) sits between LSTM blocks"):
        simulate(cm, config, 3)


def test_projection_input_counts_towards_the_activation_width():
    """m_t (the projection's input) is in the element-wise unit's 16-bit output format even when
    the block's own activations are 8-bit: an 8-bit configuration cannot run it."""
    torch.manual_seed(0)
    cm = compress_model(LSTM(3, 6, proj_size=3), density=0.5, num_pes=2, activation_bits=8)
    assert max(f.bits for f in cm.blocks[0].formats.values()) == 8
    assert cm.multiplied_bits(cm.blocks[0]) == cm.activation.output_format.bits == 16
    config = load_preset("ese-ku060").replace(pes_per_channel=2, channels=1)
    with pytest.raises(InputError, match="16-bit activations"):
        simulate(cm, config.replace(activation_bits=8), 3)
    from lstmforge.hw.rtl.design import design_from_model

    assert design_from_model(cm).pe.act_bits == 16
