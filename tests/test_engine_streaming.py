"""Streaming the integer engine frame by frame: the constants built once per (model, block,
backend) must give the whole-utterance run bit for bit, saturation counts included, must never
leak from one artifact to another, must follow an artifact that is edited after a run, and
must leave the checks of the caller's input as they were."""

import copy
import gc

import numpy as np
import pytest
import torch
from torch import nn

from lstmforge.compress import compress_model
from lstmforge.compress.artifact import FixedVector
from lstmforge.engine import plans, run
from lstmforge.engine.compiled_lstm import run_lstm_compiled
from lstmforge.engine.edge import dequantize_fast, quantize_fast
from lstmforge.engine.fixed_point import QFormat, SaturationCounter, dequantize, quantize
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.engine.plans import block_constants
from lstmforge.errors import InputError
from lstmforge.nn import LSTM


class _Stack(nn.Module):
    """A two-layer LSTMP with an output layer (two blocks)."""

    def __init__(self, proj: int) -> None:
        super().__init__()
        self.rnn = LSTM(5, 48, num_layers=2, proj_size=proj)
        self.head = nn.Linear(proj or 48, 3)

    def forward(self, x, state=None):
        y, state = self.rnn(x, state)
        return self.head(y), state


def _saturating_model(seed: int, proj: int = 40):
    """A compressed stack whose recurrent accumulators, requantizations and cells clamp, and
    its input (scaled so that the input quantization clamps as well)."""
    torch.manual_seed(seed)
    net = _Stack(proj).eval()
    with torch.no_grad():
        for name in ("weight_hh_l0", "weight_hh_l1"):
            getattr(net.rnn, name).fill_(1.9)
    x = torch.randn(2, 9, 5, generator=torch.Generator().manual_seed(seed + 1))
    cm = compress_model(net, density=0.9, num_pes=4, calibration=x * 0.05)
    return cm, x.double().numpy() * 30


def _frames(cm, x, backend, counter, state=None):
    """Run ``x`` one frame per call with the state carried; returns (y, final state)."""
    ys = []
    for t in range(x.shape[1]):
        y, state = run(cm, x[:, t : t + 1], state, backend=backend, counter=counter)
        ys.append(y)
    return np.concatenate(ys, axis=1), state


def _assert_same_counts(frames: SaturationCounter, whole: SaturationCounter) -> None:
    """Frame-by-frame counts add up to the whole run's at every site; the only extra sites are
    the carried state's quantization, which clamps nothing (states are exact codes)."""
    for site, count in whole.items():
        assert frames[site] == count, site
    extra = {site: count for site, count in frames.items() if site not in whole}
    assert all(site.endswith(".quantize") for site in extra), extra
    assert not any(extra.values()), extra


@pytest.mark.parametrize("proj", [40, 0])
def test_frame_by_frame_equals_the_whole_utterance_with_counts(proj):
    cm, x = _saturating_model(3, proj)
    state = (np.full((2, 2, proj or 48), 1.0), np.full((2, 2, 48), -0.2))
    whole = {}
    for backend in ("reference", "fast"):
        counter = SaturationCounter()
        whole[backend] = (*run(cm, x, state, backend=backend, counter=counter), counter)
    y_ref, (h_ref, c_ref), counts_ref = whole["reference"]
    y_fast, (h_fast, c_fast), counts_fast = whole["fast"]
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(h_fast, h_ref)
    np.testing.assert_array_equal(c_fast, c_ref)
    assert list(counts_fast.items()) == list(counts_ref.items())
    for site in ("rnn.weight_hh_l0.accumulate", "rnn.l1.preactivation", "rnn.input.quantize"):
        assert counts_ref[site] > 0, site
    for backend in ("fast", "reference", "fast"):  # the second fast run uses the caches
        counter = SaturationCounter()
        y, (h, c) = _frames(cm, x, backend, counter, state)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(h, h_ref)
        np.testing.assert_array_equal(c, c_ref)
        _assert_same_counts(counter, counts_ref)


def test_two_artifacts_streamed_alternately_share_nothing():
    """Two artifacts of the same topology (different weights and formats), one frame of each
    in turn, give what each gives alone; their constants are distinct objects."""
    models = [_saturating_model(seed) for seed in (5, 11)]
    alone = []
    for cm, x in models:
        counter = SaturationCounter()
        alone.append((*run(cm, x, counter=counter), counter))
    states, counters, ys = [None, None], [SaturationCounter(), SaturationCounter()], [[], []]
    for t in range(models[0][1].shape[1]):
        for i, (cm, x) in enumerate(models):
            y, states[i] = run(cm, x[:, t : t + 1], states[i], counter=counters[i])
            ys[i].append(y)
    for i, (y_alone, (h, c), counts) in enumerate(alone):
        np.testing.assert_array_equal(np.concatenate(ys[i], axis=1), y_alone)
        np.testing.assert_array_equal(states[i][0], h)
        np.testing.assert_array_equal(states[i][1], c)
        _assert_same_counts(counters[i], counts)
    assert not np.array_equal(alone[0][0], alone[1][0])
    (cm_a, _), (cm_b, _) = models
    for block_a, block_b in zip(cm_a.blocks, cm_b.blocks, strict=True):
        mine, theirs = (
            block_constants(cm_a, block_a, "fast"),
            block_constants(cm_b, block_b, "fast"),
        )
        assert mine is not theirs and mine.fused is not theirs.fused
        assert block_constants(cm_a, block_a, "fast") is mine  # kept between calls
        assert block_constants(cm_a, block_a, "reference") is not mine  # per backend


def test_constants_follow_an_artifact_edited_after_a_run():
    """Replacing a block's vector, format or activation description after a run rebuilds the
    constants: the edited artifact gives what a never-run copy with the same edit gives."""
    cm, x = _saturating_model(7)
    pristine = copy.deepcopy(cm)
    before, _ = run(cm, x[:, :3])
    kept = block_constants(cm, cm.blocks[0], "fast")

    def edit(model):
        block = model.blocks[0]
        bias = block.vectors["bias_l1"]
        block.vectors["bias_l1"] = FixedVector(bias.codes // 2 + 7, bias.fmt)
        fmt = block.formats["l0.output"]
        block.formats["l0.output"] = QFormat(fmt.bits, fmt.frac - 1)

    edit(cm)
    edit(pristine)
    assert block_constants(cm, cm.blocks[0], "fast") is not kept
    for backend in ("fast", "reference"):
        counters = SaturationCounter(), SaturationCounter()
        y_edited, s_edited = run(cm, x[:, :3], backend=backend, counter=counters[0])
        y_fresh, s_fresh = run(pristine, x[:, :3], backend=backend, counter=counters[1])
        np.testing.assert_array_equal(y_edited, y_fresh)
        np.testing.assert_array_equal(s_edited[0], s_fresh[0])
        np.testing.assert_array_equal(s_edited[1], s_fresh[1])
        assert list(counters[0].items()) == list(counters[1].items())
    assert not np.array_equal(y_edited, before)


def test_bad_input_gives_the_same_messages():
    cm, x = _saturating_model(3)
    h = np.zeros((2, 2, 40))
    c = np.zeros((2, 2, 48))
    cases = [
        (np.where(np.arange(5) == 2, np.nan, x[:, :1]), None, r"^engine input x: expected finite"),
        (x[:, :1, :4], None, r"^engine block 'rnn': expected x \[B, T, 5\], got \[2, 1, 4\]"),
        (x[:, :1], (h, c[:, :, :5]), r"^engine block 'rnn': expected state \(h \[2, 2, 40\]"),
        (x[:, :1], 3.0, r"^engine block 'rnn': expected state \(h"),  # not a pair at all
        (x[:, :1], {"h": h, "c": c}, r"^engine block 'rnn': expected state \(h"),
        (x[:, :1], ([[0.0, 1.0], [2.0]], c), r"^engine block 'rnn': expected state \(h"),  # ragged
        (x[:, :1], (h + np.inf, c), r"^engine state h: expected finite"),
        (x[:, :1], (h, c * np.nan), r"^engine state c: expected finite"),
    ]
    for backend in ("fast", "reference"):
        for xs, state, message in cases:
            with pytest.raises(InputError, match=message):
                run(cm, xs, state, backend=backend)
    block = cm.blocks[0]
    dp = IntegerDatapath(cm, block, "fast")
    with pytest.raises(InputError, match=r"^rnn\.l0\.output\.quantize: expected finite"):
        run_lstm_compiled(dp, block.config, x[:, :1], (h + np.nan, c))
    with pytest.raises(InputError, match=r"^rnn\.l1\.cell\.quantize: expected finite"):
        run_lstm_compiled(
            dp, block.config, x[:, :1], (h, np.where(np.arange(2) == 1, np.nan, c.T).T)
        )


def test_compiled_edge_conversions_equal_the_fixed_point_rules():
    rng = np.random.default_rng(0)
    for bits in (2, 8, 16, 32):
        for frac in (-32, -3, 0, 7, 15, 31, 48):
            fmt = QFormat(bits, frac)
            values = np.concatenate(
                [
                    rng.normal(size=500) * 2.0 ** rng.integers(-70, 70, 500),
                    (np.arange(-40, 40) + 0.5) * 2.0**-frac,  # ties: round half up
                    [0.0, -0.0, 1e308, -1e308, 5e-324, -5e-324],
                ]
            ).reshape(2, -1)[:, ::-1]  # not contiguous
            counts = SaturationCounter(), SaturationCounter()
            with np.errstate(over="ignore"):
                expected = quantize(values, fmt, counts[0], "s")
            got = quantize_fast(values, fmt, counts[1], "s")
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == expected.dtype and counts[0] == counts[1], (bits, frac)
            np.testing.assert_array_equal(dequantize_fast(got, fmt), dequantize(got, fmt))
    with pytest.raises(InputError, match=r"^here: expected finite"):
        quantize_fast(np.array([1.0, np.nan]), QFormat(16, 8), None, "here")


def test_constants_go_with_their_artifact():
    cm, x = _saturating_model(13)
    run(cm, x[:, :2])
    keys = {(id(cm), id(block)) for block in cm.blocks}
    assert keys <= {key[:2] for key in plans._ENTRIES}
    del cm
    gc.collect()
    assert not keys & {key[:2] for key in plans._ENTRIES}
