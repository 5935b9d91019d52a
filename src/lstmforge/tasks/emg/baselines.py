"""Per-subject non-recurrent baselines on the same long-exposure features: ridge and sparse GP.

Each window [C, W] of the normalised envelope is flattened to a C·W feature vector; the
targets are the subject's normalised joint angles at the window's last frame. Both baselines
are fitted per subject on its training windows only (the usual subject-specific protocol for
these models) and scored with the same causal evaluation as the networks.

* Ridge regression (``sklearn.linear_model.RidgeCV``; Hoerl & Kennard, 1970), the penalty
  chosen by efficient leave-one-out cross-validation on the training windows.
* Sparse Gaussian-process regression with inducing points — the SPGP family of Snelson &
  Ghahramani ("Sparse Gaussian processes using pseudo-inputs", NIPS 2006), the baseline of
  Guo et al. (2021). We use GPyTorch's ``InducingPointKernel``, which implements the
  variational inducing-point approximation of Titsias (AISTATS 2009, "SGPR"): the same
  low-rank predictive form as SPGP/DTC with the inducing inputs, kernel hyperparameters and
  noise learnt jointly, but a collapsed variational bound instead of FITC's diagonal
  correction. One GP per joint, RBF kernel with automatic relevance determination over the
  C·W features, constant mean, inducing points initialised on a random subset of the
  training windows.

With an active :class:`~lstmforge.data.emg_augmentation.ArmbandAugmentation` the training set
is the original windows plus ``copies`` augmented copies of every recording, each copy read
through one random armband placement (the networks draw one placement per training chunk).
"""

from __future__ import annotations

import gpytorch
import numpy as np
import torch

from lstmforge.data.emg_augmentation import ArmbandAugmentation
from lstmforge.data.emg_preprocessing import PreprocessConfig, window_ends
from lstmforge.data.emg_splits import TRAIN
from lstmforge.errors import InputError
from lstmforge.tasks.emg.dataset import FeatureRecording, SubjectFeatures, window_arrays
from lstmforge.tasks.emg.evaluate import SubjectPrediction, predict_subject

BASELINES = ("ridge", "sparse-gp")


def training_windows(
    subject: SubjectFeatures,
    pre: PreprocessConfig,
    augmentation: ArmbandAugmentation | None = None,
    copies: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, ...]:
    """Flattened training windows [N, C·W] and their normalised targets [N, J].

    With an active ``augmentation``, ``copies`` augmented copies of each recording follow
    the originals (placements drawn from ``seed``).
    """
    recordings = list(subject.recordings)
    if augmentation is not None and augmentation.active:
        if copies < 1:
            raise InputError(f"augmentation copies must be >= 1, got {copies}")
        rng = np.random.default_rng(seed)
        norm = subject.input_norm
        recordings += [
            FeatureRecording(
                augmentation.apply_standardised(r.frames, norm.mean, norm.std, rng),
                r.targets,
                r.split,
                r.raw,
            )
            for _ in range(copies)
            for r in subject.recordings
        ]
    features, targets = [], []
    for recording in recordings:
        images, y, _ = window_arrays(recording, pre.window, pre.step)
        keep = whole_training_windows(recording.split, pre.window, pre.step)
        features.append(images[keep].reshape(int(keep.sum()), images[0].size))
        targets.append(y[keep])
    return np.concatenate(features), np.concatenate(targets)


def whole_training_windows(split: np.ndarray, window: int, step: int) -> np.ndarray:
    """[K] True for the windows whose frames are all training frames: a window that ends in a
    training repetition may start in the test or validation one before it (the networks'
    training chunks never do either)."""
    ends = window_ends(split.shape[0], window, step)
    train_so_far = np.concatenate([[0], np.cumsum(split == TRAIN)])
    return train_so_far[ends + 1] - train_so_far[ends + 1 - window] == window


class FlatWindowPredictor:
    """Wrap a fitted ``predict(X [N, D]) -> [N, J]`` model in the recurrent call signature."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        flat = x[0].reshape(x.shape[1], -1).numpy()
        return torch.from_numpy(np.asarray(self.model.predict(flat), dtype=np.float32))[None], None


class InducingPointGP(gpytorch.models.ExactGP):
    """Constant mean, ARD-RBF kernel behind ``InducingPointKernel`` (SGPR)."""

    def __init__(self, x, y, inducing, likelihood) -> None:
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean()
        base = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=x.shape[1]))
        self.covar_module = gpytorch.kernels.InducingPointKernel(
            base, inducing_points=inducing.clone(), likelihood=likelihood
        )

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class SparseGPRegressor:
    """Independent inducing-point GPs per output column (module docstring)."""

    def __init__(self, n_inducing: int = 64, iterations: int = 60, seed: int = 0) -> None:
        if n_inducing < 1 or iterations < 1:
            raise InputError(
                f"n_inducing and iterations must be >= 1, got {n_inducing}, {iterations}"
            )
        self.n_inducing, self.iterations, self.seed = n_inducing, iterations, seed
        self.models: list = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> SparseGPRegressor:
        """Maximise the collapsed bound of each output's GP with Adam (lr 0.05)."""
        generator = torch.Generator().manual_seed(self.seed)
        train_x = torch.as_tensor(x, dtype=torch.float32)
        pick = torch.randperm(train_x.shape[0], generator=generator)[: self.n_inducing]
        self.models = []
        for column in range(y.shape[1]):
            train_y = torch.as_tensor(y[:, column], dtype=torch.float32)
            likelihood = gpytorch.likelihoods.GaussianLikelihood()
            model = InducingPointGP(train_x, train_y, train_x[pick], likelihood)
            model.train()
            likelihood.train()
            optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
            objective = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
            for _ in range(self.iterations):
                optimiser.zero_grad()
                loss = -objective(model(train_x), train_y)
                loss.backward()
                optimiser.step()
            model.eval()
            likelihood.eval()
            self.models.append(model)
        return self

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Posterior means [N, J]."""
        test_x = torch.as_tensor(x, dtype=torch.float32)
        with gpytorch.settings.fast_pred_var():
            return np.stack([m(test_x).mean.numpy() for m in self.models], axis=1)


def fit_baseline(
    name: str,
    subject: SubjectFeatures,
    pre: PreprocessConfig,
    seed: int = 0,
    augmentation: ArmbandAugmentation | None = None,
    copies: int = 4,
):
    """Fit baseline ``name`` on the subject's training windows; returns a predictor."""
    x, y = training_windows(subject, pre, augmentation, copies, seed)
    if name == "ridge":
        from sklearn.linear_model import RidgeCV

        return FlatWindowPredictor(RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x, y))
    if name == "sparse-gp":
        return FlatWindowPredictor(SparseGPRegressor(seed=seed).fit(x, y))
    raise InputError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")


def baseline_predictions(
    name: str,
    subjects: list[SubjectFeatures],
    pre: PreprocessConfig,
    seed: int = 0,
    alpha: float = 1.0,
    deadband: float = 0.0,
    augmentation: ArmbandAugmentation | None = None,
    copies: int = 4,
) -> list[SubjectPrediction]:
    """Fit per subject (on augmented copies too, see :func:`training_windows`), predict its test."""
    return [
        predict_subject(
            fit_baseline(name, s, pre, seed, augmentation, copies),
            s,
            pre,
            alpha=alpha,
            deadband=deadband,
        )
        for s in subjects
    ]
