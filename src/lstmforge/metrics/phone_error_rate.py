"""Phone error rate (PER) by Levenshtein alignment, with substitutions, deletions and
insertions counted separately.

PER = (S + D + I) / N over a test set, N the number of reference phones (the NIST sclite
convention; V. I. Levenshtein, "Binary codes capable of correcting deletions, insertions and
reversals", Soviet Physics Doklady 10(8), 1966). The alignment minimises S + D + I; among
alignments with the same total, the backtrace prefers a match or substitution, then a
deletion, then an insertion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EditCounts:
    """Errors of one hypothesis (or a sum over many) against its reference."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        """S + D + I."""
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )

    def rates(self) -> dict[str, float]:
        """PER and its parts in percent of the reference length, plus the raw counts; the rates
        of an empty reference are undefined (NaN), not a percentage of one phone."""
        n = self.reference_length if self.reference_length else float("nan")
        return {
            "per": 100.0 * self.errors / n,
            "substitution_rate": 100.0 * self.substitutions / n,
            "deletion_rate": 100.0 * self.deletions / n,
            "insertion_rate": 100.0 * self.insertions / n,
            "substitutions": float(self.substitutions),
            "deletions": float(self.deletions),
            "insertions": float(self.insertions),
            "reference_phones": float(self.reference_length),
        }


def edit_counts(reference: Sequence, hypothesis: Sequence) -> EditCounts:
    """Align ``hypothesis`` to ``reference`` (minimum edits) and count S, D and I."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diagonal = cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1])
            cost[i, j] = min(diagonal, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    substitutions = deletions = insertions = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            mismatch = reference[i - 1] != hypothesis[j - 1]
            if cost[i, j] == cost[i - 1, j - 1] + mismatch:
                substitutions += int(mismatch)
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            deletions += 1
            i -= 1
        else:
            insertions += 1
            j -= 1
    return EditCounts(substitutions, deletions, insertions, n)


def phone_error_rate(
    references: Sequence[Sequence], hypotheses: Sequence[Sequence]
) -> dict[str, float]:
    """Corpus-level PER (percent) with S/D/I rates and counts; see :meth:`EditCounts.rates`."""
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    total = EditCounts(0, 0, 0, 0)
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        total = total + edit_counts(reference, hypothesis)
    return total.rates()
