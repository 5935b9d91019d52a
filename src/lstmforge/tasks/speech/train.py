"""Training entry point of the speech task (used by ``lstmforge speech train`` and the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from lstmforge.data.speech_synthetic import corpus_parameters
from lstmforge.tasks.speech.datamodule import SpeechDataModule
from lstmforge.tasks.speech.model import named_config
from lstmforge.tasks.speech.module import SpeechRecognizer
from lstmforge.training import FitResult, TrainConfig, fit

DEFAULT_UTTERANCES = 400  # the synthetic corpus of a run without one


def build_datamodule(
    dataset: str,
    data_dir: str | Path,
    config: str,
    batch_size: int,
    corpus_utterances: int,
    corpus_seed: int,
    timit_test: str = "core_test",
) -> SpeechDataModule:
    """The data module of a named configuration's features."""
    return SpeechDataModule(
        dataset=dataset,
        data_dir=data_dir,
        features=named_config(config).features,
        batch_size=batch_size,
        corpus_utterances=corpus_utterances,
        corpus_seed=corpus_seed,
        timit_test=timit_test,
    )


def train_speech(
    train: TrainConfig,
    dataset: str = "synthetic",
    data_dir: str | Path | None = None,
    config: str = "small",
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    corpus_utterances: int | None = None,
    corpus_seed: int | None = None,
    timit_test: str = "core_test",
) -> FitResult:
    """Train an acoustic model through :func:`lstmforge.training.fit`; returns its ``FitResult``.

    Args:
        train: the run settings (``out_dir``, ``max_epochs``, ``seed`` ...). The checkpoint is
            ``train.out_dir/checkpoints/best.ckpt``.
        dataset: ``synthetic`` (the eSpeak corpus) or ``timit``.
        data_dir: the corpus directory; for ``synthetic`` it defaults to
            ``train.out_dir/corpus`` and is generated there if missing.
        config: a named model/feature configuration (:data:`~.model.CONFIGS`): ``small`` trains
            in a few minutes on 2 CPU cores, ``cpu`` is the larger CPU model, ``google-lstm``
            ESE's 1024/512 LSTMP.
        corpus_utterances, corpus_seed: size (80/10/10 train/val/test) and seed of the
            synthetic corpus; None: those of the corpus already in ``data_dir``, else 400 and 0.
            An existing corpus made with other values is refused, never regenerated.

    Example (the demo's fast path: a 400-utterance corpus and the ``small`` model)::

        from lstmforge.data.speech_synthetic import generate_corpus
        from lstmforge.training import TrainConfig

        generate_corpus("runs/demo/speech/corpus", num_utterances=400, seed=0)
        result = train_speech(TrainConfig(out_dir=Path("runs/demo/speech"), max_epochs=3))
        result.best_checkpoint  # runs/demo/speech/checkpoints/best.ckpt
    """
    if data_dir is None:
        data_dir = Path(train.out_dir) / "corpus"
    existing = corpus_parameters(data_dir) if dataset == "synthetic" else None
    if corpus_utterances is None:
        corpus_utterances = existing["num_utterances"] if existing else DEFAULT_UTTERANCES
    if corpus_seed is None:
        corpus_seed = existing["seed"] if existing else 0
    datamodule = build_datamodule(
        dataset, data_dir, config, batch_size, corpus_utterances, corpus_seed, timit_test
    )
    datamodule.prepare_data()
    datamodule.setup("fit")  # reads and checks every file before training starts
    mean, std = datamodule.statistics()
    L.seed_everything(train.seed, verbose=False)
    module = build_module(
        config,
        data={
            "dataset": dataset,
            "data_dir": str(Path(data_dir).resolve()),
            "corpus_utterances": corpus_utterances,
            "corpus_seed": corpus_seed,
            "timit_test": timit_test,
            "batch_size": batch_size,
        },
        feature_mean=None if mean is None else mean.tolist(),
        feature_std=None if std is None else std.tolist(),
        learning_rate=learning_rate,
    )
    return fit(module, datamodule, train)


def build_module(config: str, **settings: Any) -> SpeechRecognizer:
    """A freshly initialised :class:`SpeechRecognizer` of the named configuration ``config``;
    ``settings`` are further constructor arguments (``data``, ``feature_mean``, ...)."""
    chosen = named_config(config)
    return SpeechRecognizer(
        model=chosen.model.to_dict(),
        features=chosen.features.to_dict(),
        config=config,
        **settings,
    )
