"""Design-space sweep: re-pruning/re-encoding for other PE counts, and the Pareto front."""

import numpy as np
import pytest
import torch

from lstmforge.compress import compress_model
from lstmforge.hw import load_preset
from lstmforge.hw.sim.simulate import layer_structures, lstm_blocks
from lstmforge.hw.sim.sweep import pareto_front, repartition, stored_density, sweep
from lstmforge.hw.sim.timing import simulate_timing
from lstmforge.nn import LSTM


def test_pareto_front_by_hand():
    def point(pes, bw, lat, density=0.1):
        return {
            "pes_per_channel": pes,
            "memory_bandwidth_gbs": bw,
            "latency_us_per_frame": lat,
            "density": density,
        }

    a, b, c, d = point(8, 10, 50), point(16, 10, 30), point(16, 20, 30), point(8, 10, 60)
    other_density = point(32, 40, 90, density=0.2)  # only compared with its own density
    front = pareto_front([a, b, c, d, other_density])
    assert front == [
        a,
        b,
        other_density,
    ]  # c: more bandwidth for the same latency as b; d: slower than a


def test_repartition_prunes_balanced_and_keeps_stored_weights():
    torch.manual_seed(0)
    cm = compress_model(LSTM(8, 16, proj_size=8), density=0.5, num_pes=4)
    layers = [ly for b in lstm_blocks(cm) for ly in layer_structures(b)]
    redone = repartition(layers, density=0.25, num_pes=8)
    for old, new in zip(layers[0].matrices, redone[0].matrices, strict=True):
        assert new.num_pes == 8
        before, after = old.to_dense(), new.to_dense()
        kept = after != 0
        np.testing.assert_array_equal(after[kept], before[kept])  # a subset of the stored codes
        assert kept.mean() == np.float64(round(0.25 * kept.size / 8) * 8 / kept.size)
        per_pe = new.useful_counts().sum(axis=0)
        assert per_pe.max() == per_pe.min()  # load-balance-aware: same count in every PE
        # kept weights fill the runs of zeros the 4-bit index cannot skip: no padding entries
        np.testing.assert_array_equal(new.entry_counts(), new.useful_counts())


def test_per_matrix_densities_keep_their_proportions_in_a_sweep():
    torch.manual_seed(0)
    density = {"weight_ih_l0": 0.2, "weight_hh_l0": 0.6, "weight_hr_l0": 0.4}
    cm = compress_model(LSTM(8, 16, proj_size=8), density=density, num_pes=4)
    layers = [ly for b in lstm_blocks(cm) for ly in layer_structures(b)]
    stored = stored_density(cm)
    own = [(m.to_dense() != 0).mean() for m in layers[0].matrices]
    same = repartition(layers, stored, 4, relative_to=stored)  # the artifact's own point
    for old, new in zip(layers[0].matrices, same[0].matrices, strict=True):
        np.testing.assert_array_equal(new.to_dense(), old.to_dense())
    half = repartition(layers, stored / 2, 4, relative_to=stored)
    for d, m in zip(own, half[0].matrices, strict=True):
        assert (m.to_dense() != 0).mean() == pytest.approx(d / 2, abs=0.04)
    config = load_preset("ese-ku060").replace(pes_per_channel=4)
    (point,) = sweep(cm, config, 3, [4], [20.0], [stored])["points"]
    artifact = simulate_timing(layers, config, 3)  # the artifact as stored
    assert point["weight_bytes_per_frame"] == artifact.weight_bytes_per_frame


def test_more_pes_and_bandwidth_never_slow_a_frame_down():
    torch.manual_seed(1)
    cm = compress_model(LSTM(8, 32, proj_size=16), density=0.3, num_pes=4)
    result = sweep(
        cm, load_preset("ese-ku060").replace(pes_per_channel=4), 6, [2, 4, 8], [0.2, 20.0], [0.3]
    )
    by_key = {
        (p["pes_per_channel"], p["memory_bandwidth_gbs"]): p["latency_us_per_frame"]
        for p in result["points"]
    }
    assert by_key[(2, 20.0)] > by_key[(4, 20.0)] > by_key[(8, 20.0)]
    for p in result["points"]:  # no frame beats the time to stream its weights
        stream_cycles = p["weight_bytes_per_frame"] / (p["memory_bandwidth_gbs"] * 1e9 / 200e6)
        assert p["cycles_per_frame"] >= stream_cycles
        if p["memory_bandwidth_gbs"] == 0.2:  # memory-bound: within 10% of the stream time
            assert p["cycles_per_frame"] < 1.1 * stream_cycles
    for pes in (2, 4, 8):
        assert by_key[(pes, 0.2)] > by_key[(pes, 20.0)]
    front = {(p["pes_per_channel"], p["memory_bandwidth_gbs"]) for p in result["pareto_front"]}
    assert (8, 20.0) in front and (2, 0.2) in front
