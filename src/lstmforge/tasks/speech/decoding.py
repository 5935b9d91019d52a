"""CTC decoding: greedy (best path) and prefix beam search.

Both take the [T, C] log-probabilities of one utterance with the blank at index 0 and return
class indices (1..C-1) of the decoded label sequence.

* Greedy: the most probable class per step, repeats merged, blanks removed (Graves et al.,
  ICML 2006, Sec. 3.2 "best path decoding").
* Prefix beam search: keeps the ``beam_width`` most probable label prefixes (extended, at each
  step, by that step's ``beam_width`` most probable labels), each with the
  probability of its alignments ending in blank and in non-blank, so that all alignments of a
  prefix are summed (A. Y. Hannun et al., "First-pass large vocabulary continuous speech
  recognition using bi-directional recurrent DNNs", arXiv:1408.2873, 2014, Algorithm 1,
  without a language model).
"""

from __future__ import annotations

import numpy as np

BLANK = 0


def _accumulate(
    candidates: dict[tuple[int, ...], list[float]],
    prefix: tuple[int, ...],
    blank: float,
    label: float,
) -> None:
    """Add log-probabilities (ending in blank, ending in a label) to ``candidates[prefix]``."""
    entry = candidates.setdefault(prefix, [-np.inf, -np.inf])
    entry[0] = np.logaddexp(entry[0], blank)
    entry[1] = np.logaddexp(entry[1], label)


def greedy_decode(log_probs: np.ndarray) -> list[int]:
    """Best-path decoding of [T, C] log-probabilities."""
    best = np.asarray(log_probs).argmax(axis=-1)
    labels = []
    previous = BLANK
    for label in best.tolist():
        if label != previous and label != BLANK:
            labels.append(label)
        previous = label
    return labels


def beam_search_decode(log_probs: np.ndarray, beam_width: int = 8) -> list[int]:
    """CTC prefix beam search over [T, C] log-probabilities (log domain throughout)."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    # prefix -> (log P(prefix, ends in blank), log P(prefix, ends in non-blank))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    for step in log_probs:
        # extend only by the beam_width most probable labels of this step
        top_labels = (np.argsort(-step[1:])[:beam_width] + 1).tolist()
        candidates: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_label) in beams.items():
            total = np.logaddexp(p_blank, p_label)
            _accumulate(candidates, prefix, total + step[BLANK], -np.inf)  # blank: prefix unchanged
            if prefix:  # repeat of the last label without a blank between: merged
                _accumulate(candidates, prefix, -np.inf, p_label + step[prefix[-1]])
            for label in top_labels:
                # after a blank the same label starts a new token; directly after it, it cannot
                via = p_blank if prefix and label == prefix[-1] else total
                _accumulate(candidates, prefix + (label,), -np.inf, via + step[label])
        ranked = sorted(candidates.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked[:beam_width]}
    best = max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))
    return list(best[0])
