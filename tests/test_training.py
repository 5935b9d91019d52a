"""The shared Lightning training loop: checkpoints, history, resume, checkpoint validation."""

import dataclasses
import json
import logging
import time

import lightning as L
import pytest
import torch
import torch.nn.utils.parametrize
from torch.utils.data import DataLoader, TensorDataset

from lstmforge.errors import InputError
from lstmforge.training import TrainConfig, fit, load_checkpoint, save_checkpoint
from lstmforge.training.checkpoint import load_weights


class _Regressor(L.LightningModule):
    def __init__(self, task: str = "toy", arch: str = "linear") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(3, 1)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Data(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, generator=g)
        self.ds = TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]))

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=16, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=64)


class _LoggingRegressor(_Regressor):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss


def test_history_pairs_each_epochs_training_and_validation_scores(tmp_path):
    fit(_LoggingRegressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=3, progress=False))
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    csv = (tmp_path / "logs" / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    header = csv[0].split(",")
    logged = {}  # epoch -> train_loss as the CSV logger wrote it
    for row in csv[1:]:
        values = dict(zip(header, row.split(","), strict=True))
        if values.get("train_loss"):
            logged[float(values["epoch"])] = float(values["train_loss"])
    assert [r["epoch"] for r in history] == [0.0, 1.0, 2.0]
    for record in history:
        assert record["train_loss"] == pytest.approx(logged[record["epoch"]])
        assert "val_loss" in record


def test_fit_writes_checkpoints_history_and_config(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        result = fit(
            _Regressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=3, progress=False)
        )
    assert not [r for r in caplog.records if "Tip:" in r.getMessage()]  # no sales pitch
    assert result.best_checkpoint == tmp_path / "checkpoints" / "best.ckpt"
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in history] == [0.0, 1.0, 2.0]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert json.loads((tmp_path / "train_config.json").read_text())["seed"] == 0
    assert (tmp_path / "logs" / "csv" / "version_0" / "metrics.csv").is_file()


def test_resume_continues_from_last_checkpoint(tmp_path):
    fit(_Regressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=2, progress=False))
    resumed = fit(
        _Regressor(),
        _Data(),
        TrainConfig(out_dir=tmp_path, max_epochs=4, resume=True, progress=False),
    )
    epochs = [r["epoch"] for r in resumed.history]
    assert epochs == [0.0, 1.0, 2.0, 3.0]
    assert load_checkpoint(resumed.last_checkpoint, task="toy")["epoch"] == 3


def test_resume_with_other_settings_is_refused(tmp_path):
    fit(_Regressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=1, progress=False))
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(InputError, match=r"arch: saved \"linear\", now \"other\""):
        fit(
            _Regressor(arch="other"),
            _Data(),
            TrainConfig(out_dir=tmp_path, max_epochs=2, resume=True, progress=False),
        )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


class _RegressorWithData(_Regressor):
    def __init__(self, data: dict | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()


def test_resume_names_the_nested_setting_that_differs(tmp_path):
    data = {"dataset": "radar", "num_train": 8, "notes": "x" * 80}
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=1, progress=False)
    fit(_RegressorWithData(data), _Data(), cfg)
    with pytest.raises(InputError, match=r"data\.num_train: saved 8, now 10") as err:
        fit(
            _RegressorWithData(data | {"num_train": 10}),
            _Data(),
            dataclasses.replace(cfg, resume=True),
        )
    assert "notes" not in str(err.value)


class _RegressorWithNewOption(_Regressor):
    """The same model after an option was added (absent from older checkpoints)."""

    def __init__(self, task: str = "toy", arch: str = "linear", width: float = 1.0) -> None:
        super().__init__(task, arch)  # its save_hyperparameters() collects width from here too


def test_resume_accepts_an_option_the_checkpoint_predates_at_its_default(tmp_path):
    fit(_Regressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=1, progress=False))
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=2, resume=True, progress=False)
    fit(_RegressorWithNewOption(width=1), _Data(), cfg)  # 1 == 1.0: the default, same run
    with pytest.raises(InputError, match=r"width: saved 1, now 2.0"):
        fit(_RegressorWithNewOption(width=2.0), _Data(), cfg)


def test_resume_without_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        fit(_Regressor(), _Data(), TrainConfig(out_dir=tmp_path, resume=True, progress=False))


def _seeded_fit(out_dir):
    L.seed_everything(7, verbose=False)
    return fit(_Regressor(), _Data(), TrainConfig(out_dir=out_dir, max_epochs=2, progress=False))


def test_same_seed_gives_same_weights(tmp_path):
    a, b = _seeded_fit(tmp_path / "a"), _seeded_fit(tmp_path / "b")
    wa = load_checkpoint(a.last_checkpoint, task="toy")["state_dict"]["net.weight"]
    wb = load_checkpoint(b.last_checkpoint, task="toy")["state_dict"]["net.weight"]
    assert torch.equal(wa, wb)


def test_load_checkpoint_rejects_wrong_task_arch_and_corrupt_files(tmp_path):
    result = fit(_Regressor(), _Data(), TrainConfig(out_dir=tmp_path, max_epochs=1, progress=False))
    ckpt = result.last_checkpoint
    loaded = load_checkpoint(ckpt, task="toy", arch="linear")
    assert loaded["hparams"]["arch"] == "linear" and "net.weight" in loaded["state_dict"]
    with pytest.raises(InputError, match="from task 'toy', expected 'speech'"):
        load_checkpoint(ckpt, task="speech")
    with pytest.raises(InputError, match="architecture"):
        load_checkpoint(ckpt, task="toy", arch="conv")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt", task="toy")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(broken, task="toy")
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(noise, task="toy")


def test_save_checkpoint_round_trips_and_load_weights_names_misfits(tmp_path):
    module = _Regressor()
    path = save_checkpoint(module, tmp_path / "m.ckpt")
    loaded = load_checkpoint(path, task="toy", arch="linear")
    other = _Regressor()
    load_weights(other, loaded, path)
    assert torch.equal(other.net.weight, module.net.weight)
    wider = torch.nn.Linear(4, 1)
    with pytest.raises(InputError, match=r"m.ckpt: weights do not fit architecture 'linear'"):
        load_weights(wider, {**loaded, "state_dict": {"weight": module.net.weight}}, path)
    torch.nn.utils.parametrize.register_parametrization(module.net, "weight", torch.nn.Identity())
    masked = save_checkpoint(module, tmp_path / "step.ckpt")  # as a prune-retrain step saves
    with pytest.raises(InputError, match="inside a prune-retrain schedule.*retrained.ckpt"):
        load_weights(_Regressor(), load_checkpoint(masked, task="toy"), masked)
    assert load_checkpoint(path)["hparams"]["task"] == "toy"  # any task
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "untasked.ckpt")
    with pytest.raises(InputError, match="records no task"):
        load_checkpoint(tmp_path / "untasked.ckpt")
    with pytest.raises(InputError, match="records no task"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "plain.ckpt")
    assert not (tmp_path / "plain.ckpt").exists()


def test_impossible_config_is_rejected(tmp_path):
    with pytest.raises(InputError, match="max_epochs"):
        TrainConfig(out_dir=tmp_path, max_epochs=0).validate()
    with pytest.raises(InputError, match="max_minutes"):
        TrainConfig(out_dir=tmp_path, max_minutes=0.0).validate()


class _SlowRegressor(_Regressor):
    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)


def test_max_minutes_stops_a_run_and_keeps_its_checkpoints(tmp_path):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=1000, max_minutes=0.02, progress=False)
    result = fit(_SlowRegressor(), _Data(), cfg)  # 4 steps of >= 50 ms per epoch, 1.2 s in all
    assert 1 <= result.epochs_run < 20
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert result.history and result.seconds < 60
    # the limit is per call: resuming with the same limit trains for that long again
    resumed = fit(_SlowRegressor(), _Data(), dataclasses.replace(cfg, resume=True))
    assert resumed.epochs_run > result.epochs_run
    with pytest.raises(InputError, match="max_minutes"):
        TrainConfig(out_dir=tmp_path, max_minutes=float("inf")).validate()


class _CtrlCAtStep(L.Callback):
    """Simulate Ctrl-C in the middle of the second epoch."""

    def on_train_batch_end(self, trainer, *_):
        if trainer.current_epoch == 1 and trainer.global_step == 6:
            raise KeyboardInterrupt


def _fit_with(callback, cfg, monkeypatch):
    """``fit`` with one more Lightning callback (one that raises, to stop the run)."""
    from lstmforge.training import trainer as trainer_module

    original = trainer_module.L.Trainer

    def trainer_with_callback(*args, **kwargs):
        kwargs["callbacks"] = [*kwargs["callbacks"], callback]
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module.L, "Trainer", trainer_with_callback)
    try:
        return fit(_Regressor(), _Data(), cfg)
    finally:
        monkeypatch.setattr(trainer_module.L, "Trainer", original)


def test_interrupt_saves_a_checkpoint_and_resume_picks_it_up(tmp_path, monkeypatch):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=3, progress=False)
    with pytest.raises(SystemExit):
        _fit_with(_CtrlCAtStep(), cfg, monkeypatch)

    interrupted = tmp_path / "checkpoints" / "interrupted.ckpt"
    assert interrupted.is_file()
    assert load_checkpoint(interrupted, task="toy")["epoch"] == 1
    resumed = fit(
        _Regressor(),
        _Data(),
        TrainConfig(out_dir=tmp_path, max_epochs=3, resume=True, progress=False),
    )
    assert [r["epoch"] for r in resumed.history] == [0.0, 1.0, 2.0]
    assert not interrupted.exists()  # the finished run's last.ckpt supersedes it


def test_a_resume_that_trains_nothing_keeps_the_interruption(tmp_path, monkeypatch):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=3, progress=False)
    with pytest.raises(SystemExit):
        _fit_with(_CtrlCAtStep(), cfg, monkeypatch)
    interrupted = tmp_path / "checkpoints" / "interrupted.ckpt"
    # max_epochs already reached by the interrupted epoch: nothing is trained, nothing lost
    fit(_Regressor(), _Data(), dataclasses.replace(cfg, max_epochs=1, resume=True))
    assert interrupted.is_file()


def test_an_out_dir_holding_a_run_is_refused_without_resume(tmp_path):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=2, progress=False)
    first = fit(_Regressor(), _Data(), cfg)
    saved = load_checkpoint(first.last_checkpoint, task="toy")["state_dict"]["net.weight"]
    with pytest.raises(InputError, match=r"already holds a training run .*--resume"):
        fit(_Regressor(), _Data(), dataclasses.replace(cfg, max_epochs=3))
    kept = load_checkpoint(first.last_checkpoint, task="toy")["state_dict"]["net.weight"]
    assert torch.equal(saved, kept)
    # restart: a fresh run from its own initialisation, the old checkpoints replaced
    L.seed_everything(3, verbose=False)
    fresh = fit(_Regressor(), _Data(), dataclasses.replace(cfg, max_epochs=1, restart=True))
    assert fresh.epochs_run == 1 and [r["epoch"] for r in fresh.history] == [0.0]
    assert load_checkpoint(fresh.last_checkpoint, task="toy")["epoch"] == 0
    with pytest.raises(InputError, match="exclude each other"):
        TrainConfig(out_dir=tmp_path, resume=True, restart=True).validate()


class _FailAtFirstStep(L.Callback):
    def on_train_batch_start(self, *_):
        raise RuntimeError("broken batch")


def test_a_run_that_dies_before_training_leaves_no_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="broken batch"):
        _fit_with(_FailAtFirstStep(), TrainConfig(out_dir=tmp_path, progress=False), monkeypatch)
    assert list((tmp_path / "checkpoints").iterdir()) == []


class _ConstantValidation(_Regressor):
    def validation_step(self, batch, _):
        self.log("val_loss", torch.tensor(1.0))  # never improves


def test_early_stopping_state_keeps_lightnings_key(tmp_path):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=1, patience=3, progress=False)
    result = fit(_Regressor(), _Data(), cfg)
    callbacks = torch.load(result.last_checkpoint, weights_only=False)["callbacks"]
    assert any(key.startswith("EarlyStopping{") for key in callbacks)


def test_resume_uses_the_patience_given_now(tmp_path):
    cfg = TrainConfig(out_dir=tmp_path, max_epochs=20, patience=1, progress=False)
    stopped = fit(_ConstantValidation(), _Data(), cfg)
    assert stopped.epochs_run == 2  # the first epoch sets the best, the second does not improve
    more = dataclasses.replace(cfg, patience=4, resume=True)
    resumed = fit(_ConstantValidation(), _Data(), more)
    assert resumed.epochs_run == 5  # wait count 1 from the saved run, then 3 more epochs
