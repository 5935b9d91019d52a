"""Regression metrics against scipy / scikit-learn oracles and hand-worked values."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from lstmforge.errors import InputError
from lstmforge.metrics.regression import mae, nrmse, pearson_cc, r2, regression_metrics, rmse


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(200, 4)) * [1.0, 5.0, 0.1, 30.0]
    return y, y + rng.normal(size=y.shape) * [0.5, 1.0, 0.2, 3.0]


def test_pearson_matches_scipy(pair):
    y, p = pair
    expected = [pearsonr(y[:, j], p[:, j]).statistic for j in range(4)]
    np.testing.assert_allclose(pearson_cc(y, p), expected, rtol=1e-12)


def test_rmse_r2_mae_match_sklearn(pair):
    y, p = pair
    np.testing.assert_allclose(
        rmse(y, p), np.sqrt(mean_squared_error(y, p, multioutput="raw_values")), rtol=1e-12
    )
    np.testing.assert_allclose(r2(y, p), r2_score(y, p, multioutput="raw_values"), rtol=1e-12)
    np.testing.assert_allclose(
        mae(y, p), mean_absolute_error(y, p, multioutput="raw_values"), rtol=1e-12
    )


def test_nrmse_hand_worked():
    y = np.array([0.0, 10.0, 20.0, 40.0])
    p = np.array([2.0, 8.0, 22.0, 38.0])  # every error is 2 -> RMSE 2, range 40
    assert nrmse(y, p)[0] == pytest.approx(0.05)
    assert rmse(y, p)[0] == pytest.approx(2.0)
    assert mae(y, p)[0] == pytest.approx(2.0)


def test_perfect_and_anti_correlated_predictions():
    y = np.linspace(0, 1, 50)[:, None]
    assert pearson_cc(y, y)[0] == pytest.approx(1.0)
    assert pearson_cc(y, -3 * y + 1)[0] == pytest.approx(-1.0)
    assert r2(y, y)[0] == pytest.approx(1.0)
    assert r2(y, np.full_like(y, y.mean()))[0] == pytest.approx(0.0)


def test_constant_truth_gives_nan_not_crash():
    y = np.ones((10, 2))
    y[:, 1] = np.arange(10)
    values = regression_metrics(y, y + 0.1)
    assert np.isnan(values["cc"][0]) and np.isnan(values["nrmse"][0]) and np.isnan(values["r2"][0])
    assert values["cc"][1] == pytest.approx(1.0)
    assert values["rmse"][0] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "y, p, match",
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "same shape"),
        (np.zeros((1, 2)), np.zeros((1, 2)), "at least 2"),
        (np.array([[0.0], [np.nan]]), np.zeros((2, 1)), "finite"),
    ],
)
def test_bad_input_is_rejected(y, p, match):
    with pytest.raises(InputError, match=match):
        regression_metrics(y, p)
