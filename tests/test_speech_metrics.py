"""Phone error rate with S/D/I against hand-worked alignments, and the phone maps."""

import itertools
import math
from functools import cache

import pytest

from lstmforge.data.phones import (
    ESPEAK_TO_PHONES,
    PHONES,
    TIMIT_FOLDING,
    TIMIT_PHONES,
    encode_phones,
    espeak_to_phones,
    fold_timit,
)
from lstmforge.errors import InputError
from lstmforge.metrics.phone_error_rate import edit_counts, phone_error_rate


@pytest.mark.parametrize(
    ("reference", "hypothesis", "sdi"),
    [
        ("k ae t", "k ae t", (0, 0, 0)),
        ("k ae t", "k ah t", (1, 0, 0)),  # one substitution
        ("k ae t", "k t", (0, 1, 0)),  # ae deleted
        ("k ae t", "k ae t s", (0, 0, 1)),  # s inserted
        ("k ae t", "", (0, 3, 0)),
        ("", "s ih t", (0, 0, 3)),
        # "the cat sat" vs "the cap at": dh ah k ae t s ae t / dh ah k ae p ae t
        # t->p substituted, s deleted: 1 S + 1 D
        ("dh ah k ae t s ae t", "dh ah k ae p ae t", (1, 1, 0)),
        # sh iy / s iy y: sh->s and y inserted
        ("sh iy", "s iy y", (1, 0, 1)),
    ],
)
def test_edit_counts_hand_worked(reference, hypothesis, sdi):
    counts = edit_counts(reference.split(), hypothesis.split())
    assert (counts.substitutions, counts.deletions, counts.insertions) == sdi
    assert counts.reference_length == len(reference.split())


def test_corpus_per_sums_counts_over_utterances():
    refs = [["k", "ae", "t"], ["dh", "ah"]]
    hyps = [["k", "ah", "t", "s"], ["dh"]]  # 1 S + 1 I, then 1 D; 5 reference phones
    result = phone_error_rate(refs, hyps)
    assert result["substitutions"] == 1 and result["insertions"] == 1
    assert result["deletions"] == 1 and result["reference_phones"] == 5
    assert result["per"] == pytest.approx(60.0)
    assert result["substitution_rate"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="references"):
        phone_error_rate(refs, hyps[:1])


def test_an_empty_reference_has_no_error_rate():
    result = phone_error_rate([[]], [["k", "ae"]])
    assert result["insertions"] == 2 and result["reference_phones"] == 0
    assert math.isnan(result["per"]) and math.isnan(result["insertion_rate"])


@cache
def _levenshtein(a: tuple, b: tuple) -> int:
    """Independent recursive definition of the edit distance."""
    if not a or not b:
        return len(a) + len(b)
    return min(
        _levenshtein(a[1:], b[1:]) + (a[0] != b[0]),
        _levenshtein(a[1:], b) + 1,
        _levenshtein(a, b[1:]) + 1,
    )


def test_error_total_is_the_edit_distance_on_all_short_strings():
    for n, m in itertools.product(range(4), range(4)):
        for a in itertools.product("ab", repeat=n):
            for b in itertools.product("abc", repeat=m):
                counts = edit_counts(a, b)
                assert counts.errors == _levenshtein(a, b)
                # hypothesis length = N - D + I
                assert m == n - counts.deletions + counts.insertions


def test_timit_folding_gives_lee_hon_39():
    assert len(TIMIT_PHONES) == 61 and len(set(TIMIT_PHONES)) == 61
    assert len(PHONES) == 39
    folded = {v for v in TIMIT_FOLDING.values() if v is not None}
    assert folded == set(PHONES)
    assert fold_timit("q") is None
    assert [fold_timit(p) for p in ("ao", "ax-h", "axr", "ux", "zh", "bcl", "h#", "nx")] == [
        "aa", "ah", "er", "uw", "sh", "sil", "sil", "n"
    ]  # fmt: skip
    with pytest.raises(InputError, match="not a TIMIT phone"):
        fold_timit("xx")


def test_espeak_map_targets_the_inventory_and_strips_stress():
    for phones in ESPEAK_TO_PHONES.values():
        assert all(p in PHONES for p in phones)
    assert espeak_to_phones("'aI3") == ("ay", "er")
    assert espeak_to_phones(",oU") == ("ow",)
    assert espeak_to_phones("_:") == ()
    with pytest.raises(InputError, match="not in the phone map"):
        espeak_to_phones("Q#")
    with pytest.raises(InputError, match="39-phone inventory"):
        encode_phones(["k", "ao"])
