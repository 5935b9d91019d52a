"""CTC decoding: greedy on hand-made paths, prefix beam search against exhaustive search."""

import itertools

import numpy as np
import pytest

from lstmforge.tasks.speech.decoding import beam_search_decode, greedy_decode


def _one_hot_path(path, classes=4):
    log_probs = np.full((len(path), classes), np.log(1e-4))
    log_probs[np.arange(len(path)), path] = np.log(1 - 1e-4 * (classes - 1))
    return log_probs


@pytest.mark.parametrize(
    ("path", "labels"),
    [
        ([0, 1, 1, 0, 2, 2, 2], [1, 2]),
        ([1, 0, 1, 3, 3], [1, 1, 3]),  # a blank separates the repeated 1
        ([0, 0, 0], []),
        ([2, 2, 0, 0, 2], [2, 2]),
    ],
)
def test_greedy_merges_repeats_and_drops_blanks(path, labels):
    assert greedy_decode(_one_hot_path(path)) == labels
    assert beam_search_decode(_one_hot_path(path), beam_width=4) == labels


def _collapse(path):
    out, previous = [], 0
    for label in path:
        if label != previous and label != 0:
            out.append(label)
        previous = label
    return tuple(out)


def test_prefix_beam_search_finds_the_most_probable_labelling():
    rng = np.random.default_rng(0)
    classes, steps = 3, 5
    for _ in range(20):
        logits = rng.normal(size=(steps, classes)) * 2
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        # exhaustive: sum the probability of every alignment per collapsed labelling
        totals = {}
        for path in itertools.product(range(classes), repeat=steps):
            p = np.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
            key = _collapse(path)
            totals[key] = totals.get(key, 0.0) + p
        best = max(totals, key=totals.get)
        # a beam as wide as the number of labellings is exact
        assert tuple(beam_search_decode(log_probs, beam_width=64)) == best
