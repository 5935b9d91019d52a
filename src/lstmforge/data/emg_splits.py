"""Train / validation / test protocols for sEMG recordings: repetitions held out.

NinaPro labels each sample with the repetition it belongs to and 0 for rest. A rest period is
attributed to the repetition before it (the first rest to the first repetition), so each
repetition becomes one contiguous movement+rest segment; a sample's split is then the split
of its repetition. The standard protocols (Atzori et al., Sci. Data 1, 2014; Krasoulis et al.,
2019):

* DB2 and the synthetic data: repetitions 1, 3, 4, 6 for training and 2, 5 for testing; we
  take repetition 4 out of training for validation (early stopping), so train = 1, 3, 6.
* DB8: files A1 and A2 for training (the last repetition of A2 for validation), A3 for testing.

Several sessions of one subject (the synthetic generator's ``n_sessions``) can instead be
held out as a whole (``hold_out="sessions"``): the last session is the test set, and in the
earlier sessions the validation repetitions validate and every other repetition trains — the
electrodes are put on again between sessions, so the test session is unseen in placement,
gains and drift (Hargrove et al., 2008; Scheme & Englehart, 2011). With
``hold_out="sessions-val"`` the session before the last validates as a whole and every
repetition of the earlier sessions trains, so model selection (early stopping) also sees a
placement it was not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.errors import InputError

UNUSED, TRAIN, VAL, TEST = -1, 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
HOLD_OUTS = ("repetitions", "sessions", "sessions-val")


@dataclass(frozen=True)
class RepetitionSplit:
    """Which repetitions go to training, validation and test."""

    train: tuple[int, ...] = (1, 3, 6)
    val: tuple[int, ...] = (4,)
    test: tuple[int, ...] = (2, 5)

    def validate(self) -> None:
        """The three sets must be disjoint and train/test non-empty."""
        sets = [set(self.train), set(self.val), set(self.test)]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise InputError(f"repetition split overlaps: {self}")
        if not sets[0] or not sets[2]:
            raise InputError(f"repetition split needs train and test repetitions: {self}")


def fill_rest(repetition: np.ndarray) -> np.ndarray:
    """Attribute every rest sample (label 0) to the repetition before it (first: after it)."""
    rep = np.asarray(repetition, dtype=np.int64)
    nonzero = np.flatnonzero(rep)
    if nonzero.size == 0:
        return rep.copy()
    index = np.maximum.accumulate(np.where(rep != 0, np.arange(rep.size), 0))
    filled = rep[index]
    filled[: nonzero[0]] = rep[nonzero[0]]
    return filled


def split_by_repetition(repetition: np.ndarray, split: RepetitionSplit) -> np.ndarray:
    """Per-sample split code (TRAIN, VAL, TEST or UNUSED) from repetition labels."""
    split.validate()
    filled = fill_rest(repetition)
    codes = np.full(filled.shape, UNUSED, dtype=np.int8)
    for code, reps in ((TRAIN, split.train), (VAL, split.val), (TEST, split.test)):
        codes[np.isin(filled, reps)] = code
    return codes


def split_sessions(
    repetitions: list[np.ndarray], split: RepetitionSplit, hold_out: str
) -> list[np.ndarray]:
    """Per-sample split codes of each session's recording (``repetitions``: their labels).

    ``"repetitions"``: :func:`split_by_repetition` in every session. ``"sessions"``: the last
    session is TEST; in the others ``split.val`` repetitions are VAL and all others TRAIN.
    ``"sessions-val"``: the last session is TEST, the one before it VAL, all others TRAIN.
    """
    split.validate()
    if hold_out not in HOLD_OUTS:
        raise InputError(f"hold_out must be one of {', '.join(HOLD_OUTS)}, got {hold_out!r}")
    if hold_out == "repetitions":
        return [split_by_repetition(r, split) for r in repetitions]
    test = [np.full(repetitions[-1].shape, TEST, dtype=np.int8)]
    if hold_out == "sessions-val":
        if len(repetitions) < 3:
            raise InputError(f"hold_out 'sessions-val' needs >= 3 sessions, got {len(repetitions)}")
        train = [np.full(r.shape, TRAIN, dtype=np.int8) for r in repetitions[:-2]]
        return train + [np.full(repetitions[-2].shape, VAL, dtype=np.int8)] + test
    if len(repetitions) < 2:
        raise InputError(f"hold_out 'sessions' needs >= 2 sessions, got {len(repetitions)}")
    codes = [
        np.where(np.isin(fill_rest(r), split.val), VAL, TRAIN).astype(np.int8)
        for r in repetitions[:-1]
    ]
    return codes + test


def require_splits(codes: list[np.ndarray], source: str, needed: tuple[int, ...]) -> None:
    """Raise naming ``source`` when one of the ``needed`` splits has no samples."""
    present = set(np.unique(np.concatenate(codes)).tolist()) if codes else set()
    for code in needed:
        if code not in present:
            raise InputError(
                f"{source}: no {SPLIT_NAMES[code]} repetitions (field 'rerepetition'/"
                f"'repetition' has none of the {SPLIT_NAMES[code]} repetition numbers)"
            )
