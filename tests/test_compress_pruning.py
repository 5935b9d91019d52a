"""Pruning: plain vs load-balance-aware masks, PE load report, gradual schedule, quantization."""

import numpy as np
import pytest

from lstmforge.compress.csc import encode
from lstmforge.compress.pruning import (
    balanced_mask,
    fill_gaps,
    gradual_densities,
    magnitude_mask,
    pe_load,
    prune_mask,
)
from lstmforge.compress.quantization import quantize_weights, weight_format
from lstmforge.compress.sensitivity import allocate_densities, measure_sensitivity
from lstmforge.errors import InputError


def test_magnitude_mask_keeps_the_largest():
    w = np.array([[0.1, -0.9, 0.3], [0.05, 0.5, -0.2]])
    mask = magnitude_mask(w, 0.5)
    assert mask.tolist() == [[False, True, True], [False, True, False]]


def test_balanced_mask_equal_counts_per_pe_and_largest_within_each():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 40))
    w[::8] *= 10  # PE 0 of 8 owns all the large weights: plain pruning overloads it
    mask = balanced_mask(w, 0.1, 8)
    load = pe_load(mask, 8)
    assert len(set(load["nonzeros_per_pe"])) == 1 and load["imbalance"] == 1.0
    assert load["nonzeros_per_pe"][0] == round(0.1 * 64 * 40 / 8)
    for pe in range(8):  # inside a PE, every kept weight outweighs every pruned one
        sub, kept = np.abs(w[pe::8]), mask[pe::8]
        assert sub[kept].min() >= sub[~kept].max()
    plain = pe_load(magnitude_mask(w, 0.1), 8)
    assert plain["imbalance"] > 4 and plain["utilisation"] < 0.25
    assert sum(plain["nonzeros_per_pe"]) == sum(load["nonzeros_per_pe"])


def test_pe_load_hand_example():
    mask = np.zeros((4, 3), dtype=bool)
    mask[0, :] = True  # PE 0 (rows 0, 2): 3 nonzeros
    mask[1, 0] = True  # PE 1 (rows 1, 3): 1 nonzero
    load = pe_load(mask, 2)
    assert load["nonzeros_per_pe"] == [3, 1]
    assert load["imbalance"] == pytest.approx(1.5) and load["utilisation"] == pytest.approx(2 / 3)


def test_gradual_schedule_is_cubic_and_ends_at_target():
    densities = gradual_densities(0.1, 4)
    assert densities[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(densities[:-1], densities[1:], strict=True))
    assert densities[0] == pytest.approx(1 - 0.9 * (1 - 0.75**3))


def test_bad_density_is_an_input_error():
    with pytest.raises(InputError, match="density"):
        magnitude_mask(np.ones((2, 2)), 1.5)
    with pytest.raises(InputError, match="density"):
        balanced_mask(np.ones((2, 2)), 0.0, 1)
    with pytest.raises(InputError, match="density"):
        balanced_mask(np.ones((2, 2)), True, 1)
    assert balanced_mask(np.ones((4, 4)), np.float32(0.5), 2).sum() == 8  # NumPy scalars pass


@pytest.mark.parametrize("fill", [False, True])
@pytest.mark.parametrize(("rows", "num_pes"), [(10, 32), (32, 64), (3, 4)])
def test_more_pes_than_rows_still_meets_the_density(rows, num_pes, fill):
    """PEs that own no rows take no share of the budget."""
    weight = np.random.default_rng(0).standard_normal((rows, 40))
    mask = prune_mask(weight, 0.25, num_pes, balanced=True, fill=fill)
    assert mask.sum() == round(0.25 * weight.size / rows) * rows
    assert len(set(mask.sum(axis=1))) == 1  # every owning PE keeps the same count


def test_weight_quantization_keeps_pattern_and_error_bound():
    rng = np.random.default_rng(3)
    w = rng.normal(scale=0.2, size=(30, 30))
    w[0, 0] = 1e-7  # kept but below half a step: must not vanish
    mask = np.abs(w) > 0.1
    mask[0, 0] = True
    fmt = weight_format(np.where(mask, w, 0), 12)
    assert np.abs(w[mask]).max() < 2 ** (fmt.bits - 1 - fmt.frac)  # range holds the max
    codes = quantize_weights(w, mask, fmt)
    np.testing.assert_array_equal(codes != 0, mask)
    err = np.abs(codes * fmt.scale - w)[mask]
    assert err[1:].max() <= fmt.scale / 2 + 1e-12  # round to nearest


def test_gap_fill_hand_example():
    weight = np.zeros((21, 1))
    weight[20, 0], weight[7, 0], weight[3, 0] = 5.0, 0.4, 0.3
    mask = np.zeros((21, 1), dtype=bool)
    mask[20, 0] = True  # a gap of 20 zero rows: would need one padding entry
    filled = fill_gaps(weight, mask, 1)
    assert np.flatnonzero(filled[:, 0]).tolist() == [7, 20]  # largest in rows 0..15 kept instead


def test_gap_filling_removes_padding_at_the_same_budget():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(512, 64))
    plain = prune_mask(w, 0.08, 8, balanced=True)
    filled = prune_mask(w, 0.08, 8, balanced=True, fill=True)
    assert sum(pe.padding for pe in encode(plain.astype(np.int64), 8)) > 0
    pes = encode(filled.astype(np.int64), 8)
    assert all(pe.padding == 0 for pe in pes)
    assert filled.mean() == pytest.approx(0.08, abs=0.002)
    assert pe_load(filled, 8)["imbalance"] <= 1.01
    unbalanced = prune_mask(w, 0.08, 8, balanced=False, fill=True)
    assert all(pe.padding == 0 for pe in encode(unbalanced.astype(np.int64), 8))


def test_density_allocation_follows_sensitivity_and_meets_the_budget():
    sizes = {"a:w": 1000, "b:w": 3000, "c:w": 100}
    dens = allocate_densities(sizes, 0.1, {"a:w": 1.0, "b:w": 0.25, "c:w": 50.0})
    kept = sum(dens[k] * n for k, n in sizes.items())
    assert kept == pytest.approx(0.1 * 4100)
    assert dens["c:w"] == 1.0  # capped; its unused share went to the others
    assert dens["a:w"] == pytest.approx(4 * dens["b:w"])


def test_density_allocation_keeps_every_matrix_at_or_above_the_floor():
    sizes = {"a:w": 1000, "b:w": 3000, "c:w": 500, "d:w": 100}
    sensitivity = {"a:w": 2.0, "b:w": 0.5, "c:w": 0.0, "d:w": -0.3}  # c, d: pruning did not hurt
    dens = allocate_densities(sizes, 0.2, sensitivity, floor=0.05)
    assert sum(dens[k] * n for k, n in sizes.items()) == pytest.approx(0.2 * 4600)
    assert dens["c:w"] == dens["d:w"] == 0.05
    assert dens["a:w"] == pytest.approx(4 * dens["b:w"]) and dens["b:w"] > 0.05
    with pytest.raises(InputError, match="b:w is not a finite number"):
        allocate_densities(sizes, 0.2, sensitivity | {"b:w": float("nan")}, floor=0.05)
    with pytest.raises(InputError, match="floor 0.3 outside"):
        allocate_densities(sizes, 0.2, sensitivity, floor=0.3)


def test_per_matrix_density_keys_and_unknown_names():
    from lstmforge.compress import compress_model
    from lstmforge.nn import LSTM

    model = LSTM(8, 16)  # the module itself is the block: reports call it <root>
    cm = compress_model(
        model, density={"<root>:weight_ih_l0": 0.25, "weight_hh_l0": 0.5}, num_pes=2
    )
    kept = {k: (m.dense_codes() != 0).mean() for k, m in cm.blocks[0].matrices.items()}
    assert kept["weight_ih_l0"] == pytest.approx(0.25, abs=0.03)
    assert kept["weight_hh_l0"] == pytest.approx(0.5, abs=0.03)
    with pytest.raises(InputError, match="no matrix 'nonsense:foo'"):
        compress_model(
            model,
            density={"weight_ih_l0": 0.2, "weight_hh_l0": 0.2, "nonsense:foo": 0.9},
            num_pes=2,
        )


def test_measured_sensitivity_prunes_one_matrix_at_a_time():
    import torch

    from lstmforge.nn import LSTM

    torch.manual_seed(0)
    model = LSTM(4, 8, proj_size=4)
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        reference = model(x)[0]

    def score(m):
        with torch.no_grad():
            return float(((m(x)[0] - reference) ** 2).mean())

    sens = measure_sensitivity(model, score, probe_density=0.2, num_pes=2)
    assert set(sens) == {":weight_ih_l0", ":weight_hh_l0", ":weight_hr_l0"}
    assert all(v > 0 for v in sens.values())
    assert model.weight_ih_l0.count_nonzero() == model.weight_ih_l0.numel()  # original untouched
