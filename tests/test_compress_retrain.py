"""Gradual prune-retrain through the shared training loop: masks survive fine-tuning; QAT."""

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstmforge.compress import compress_model
from lstmforge.compress.pruning import pe_load
from lstmforge.compress.retrain import MaskedWeight, kept_fraction, matrix_parameters, prune_retrain
from lstmforge.nn import LSTM


class _Toy(L.LightningModule):
    def __init__(self, task: str = "toy", arch: str = "lstm") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.rnn = LSTM(3, 16, proj_size=8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0])

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class _Data(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(32, 6, 3, generator=g)
        self.ds = TensorDataset(x, x.cumsum(1)[..., :1] * 0.3)

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=8)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=32)


def test_masks_hold_through_fine_tuning_and_match_the_artifact(tmp_path):
    L.seed_everything(0, verbose=False)
    module = _Toy()
    before = module.rnn.weight_hh_l0.detach().clone()
    steps = prune_retrain(
        module,
        _Data(),
        density=0.25,
        num_pes=4,
        steps=2,
        epochs_per_step=1,
        out_dir=tmp_path,
        progress=False,
    )
    assert [round(s.density, 4) for s in steps] == [round(1 - 0.75 * (1 - 0.5**3), 4), 0.25]
    assert (tmp_path / "step1" / "checkpoints" / "last.ckpt").is_file()
    assert kept_fraction(module) == pytest.approx(0.25, abs=0.01)
    after = module.rnn.weight_hh_l0.detach()
    kept = after != 0
    assert not torch.equal(after[kept], before[kept])  # fine-tuning moved the kept weights
    assert pe_load(kept.numpy(), 4)["imbalance"] == 1.0
    cm = compress_model(module, density=0.25, num_pes=4)
    for block in cm.blocks:
        owner = dict(module.named_modules())[block.name]
        for name, matrix in block.matrices.items():
            dense = getattr(owner, name).detach().numpy().reshape(matrix.shape)
            np.testing.assert_array_equal(matrix.dense_codes() != 0, dense != 0)


def test_qat_parametrization_is_on_the_grid_with_straight_through_gradient():
    weight = torch.tensor([[0.3, -0.02], [0.51, 0.0049]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    out = MaskedWeight(mask, bits=4)(weight)  # max 0.51 -> Q1.3 steps of 1/8
    assert out.detach().tolist() == [[0.25, 0.0], [0.5, 0.0]]
    out.sum().backward()
    assert weight.grad.tolist() == mask.tolist()  # identity through rounding, zero when pruned


def test_matrix_parameters_finds_every_matrix():
    names = [name for _, _, name in matrix_parameters(_Toy())]
    assert names == ["weight_ih_l0", "weight_hh_l0", "weight_hr_l0", "weight"]
