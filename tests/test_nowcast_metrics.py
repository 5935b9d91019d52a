"""Nowcasting and image metrics against independent oracles (pysteps, scikit-image, torch)."""

import numpy as np
import pytest
import torch

from lstmforge.metrics.image import (
    FrameScores,
    cross_entropy,
    frame_mae,
    frame_mse,
    psnr,
    ssim,
)
from lstmforge.metrics.nowcasting import (
    NowcastScores,
    contingency_counts,
    csi,
    far,
    fss,
    pod,
)


def _rain(shape, seed):
    """Continuous rain-like fields (no values exactly on a threshold)."""
    rng = np.random.default_rng(seed)
    return np.exp(rng.normal(0.0, 1.5, shape))


@pytest.mark.parametrize("threshold", [0.5, 2.0, 10.0])
def test_categorical_scores_match_pysteps(threshold):
    from pysteps.verification.detcatscores import det_cat_fct

    pred, obs = _rain((3, 4, 20, 20), 0), _rain((3, 4, 20, 20), 1)
    hits, misses, false_alarms = (c.sum() for c in contingency_counts(pred, obs, threshold))
    oracle = det_cat_fct(pred, obs, threshold, scores=["CSI", "POD", "FAR"])
    assert csi(hits, misses, false_alarms) == pytest.approx(oracle["CSI"], rel=1e-12)
    assert pod(hits, misses) == pytest.approx(oracle["POD"], rel=1e-12)
    assert far(hits, false_alarms) == pytest.approx(oracle["FAR"], rel=1e-12)


def test_categorical_scores_by_hand_and_undefined_cases():
    obs = np.array([[[[1.0, 1.0, 0.0, 0.0]]]])
    pred = np.array([[[[1.0, 0.0, 1.0, 0.0]]]])
    hits, misses, false_alarms = contingency_counts(pred, obs, 0.5)
    assert (hits[0], misses[0], false_alarms[0]) == (1, 1, 1)
    assert csi(hits, misses, false_alarms)[0] == pytest.approx(1 / 3)
    assert np.isnan(pod(np.array(0), np.array(0)))  # no observed events: undefined, not 0


@pytest.mark.parametrize(("threshold", "scale"), [(0.5, 1), (1.0, 5), (3.0, 15)])
def test_fss_matches_pysteps_over_several_fields(threshold, scale):
    from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init

    pred, obs = _rain((5, 32, 32), 2), _rain((5, 32, 32), 3)
    state = fss_init(threshold, scale)
    for p, o in zip(pred, obs, strict=True):
        fss_accum(state, p, o)
    assert fss(pred[None], obs[None], threshold, scale) == pytest.approx(
        fss_compute(state), rel=1e-10
    )


def test_fss_single_field_matches_pysteps_and_is_one_for_a_perfect_forecast():
    from pysteps.verification.spatialscores import fss as pysteps_fss

    pred, obs = _rain((1, 1, 40, 40), 4), _rain((1, 1, 40, 40), 5)
    oracle = pysteps_fss(pred[0, 0], obs[0, 0], 1.0, 9)
    assert fss(pred, obs, 1.0, 9) == pytest.approx(oracle, rel=1e-10)
    assert fss(obs, obs, 1.0, 9) == 1.0


def test_nowcast_scores_accumulate_batches_per_lead_time():
    from pysteps.verification.detcatscores import det_cat_fct

    pred, obs = _rain((6, 3, 16, 16), 6), _rain((6, 3, 16, 16), 7)
    scores = NowcastScores(thresholds=(0.5, 2.0), fss_scales=(1, 3))
    scores.update(pred[:2], obs[:2])
    scores.update(pred[2:], obs[2:])
    result = scores.result()
    assert result["csi_2"] == pytest.approx(det_cat_fct(pred, obs, 2.0, ["CSI"])["CSI"])
    for lead in range(3):
        expected = det_cat_fct(pred[:, lead], obs[:, lead], 0.5, ["POD"])["POD"]
        assert result["per_lead"]["pod_0.5"][lead] == pytest.approx(expected)
    assert result["mse"] == pytest.approx(np.mean((pred - obs) ** 2))
    lead1 = np.mean((pred[:, 1] - obs[:, 1]) ** 2)
    assert result["per_lead"]["mse"][1] == pytest.approx(lead1)
    correlation = np.sum(pred * obs) / np.sqrt(np.sum(pred**2) * np.sum(obs**2))
    assert result["correlation"] == pytest.approx(correlation)
    assert set(result) >= {"far_0.5", "fss_2_s3", "per_lead"}


def test_ssim_and_psnr_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    true = rng.random((2, 3, 24, 24))
    pred = np.clip(true + 0.15 * rng.standard_normal(true.shape), 0, 1)
    ours_ssim = ssim(torch.from_numpy(pred), torch.from_numpy(true)).numpy()
    ours_psnr = psnr(torch.from_numpy(pred), torch.from_numpy(true)).numpy()
    for t in range(3):
        ref_ssim = np.mean(
            [
                structural_similarity(
                    true[b, t],
                    pred[b, t],
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=1.0,
                )
                for b in range(2)
            ]
        )
        ref_psnr = np.mean(
            [peak_signal_noise_ratio(true[b, t], pred[b, t], data_range=1.0) for b in range(2)]
        )
        assert ours_ssim[t] == pytest.approx(ref_ssim, abs=1e-10)
        assert ours_psnr[t] == pytest.approx(ref_psnr, abs=1e-10)


def test_frame_errors_are_summed_over_pixels_and_averaged_over_frames():
    true = torch.zeros(2, 2, 4, 4)
    pred = torch.zeros(2, 2, 4, 4)
    pred[0, 0] = 0.5  # 16 pixels off by 0.5 in one frame of one sequence
    assert frame_mse(pred, true).tolist() == pytest.approx([16 * 0.25 / 2, 0.0])
    assert frame_mae(pred, true).tolist() == pytest.approx([16 * 0.5 / 2, 0.0])


def test_cross_entropy_is_the_summed_binary_cross_entropy():
    rng = np.random.default_rng(1)
    prob = torch.from_numpy(rng.uniform(0.05, 0.95, (3, 2, 8, 8)))
    true = torch.from_numpy(rng.random((3, 2, 8, 8)))
    oracle = torch.nn.functional.binary_cross_entropy(prob, true, reduction="sum") / 3
    assert cross_entropy(prob, true).sum().item() == pytest.approx(oracle.item())


def test_frame_scores_overall_values_and_per_sequence_cross_entropy():
    rng = np.random.default_rng(2)
    prob = torch.from_numpy(rng.uniform(0.05, 0.95, (4, 3, 16, 16)))
    true = torch.from_numpy((rng.random((4, 3, 16, 16)) > 0.5).astype(np.float64))
    scores = FrameScores()
    scores.update(prob[:1], true[:1])
    scores.update(prob[1:], true[1:])
    result = scores.result()
    assert result["cross_entropy"] == pytest.approx(cross_entropy(prob, true).sum().item())
    assert result["mse"] == pytest.approx(frame_mse(prob, true).mean().item())
    assert result["per_lead"]["ssim"] == pytest.approx(ssim(prob, true).tolist())
