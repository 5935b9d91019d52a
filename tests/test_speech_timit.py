"""TIMIT loader on a tiny TIMIT-format tree written here (NIST SPHERE headers included)."""

import numpy as np
import pytest

from lstmforge.data.audio import read_audio
from lstmforge.data.timit import folded_phones, list_timit, read_phn
from lstmforge.errors import InputError
from lstmforge.tasks.speech.datamodule import timit_splits


def write_sphere(path, samples: np.ndarray, rate: int = 16000) -> None:
    """A NIST SPHERE file as TIMIT ships it: 1024-byte ASCII header, little-endian int16."""
    header = (
        "NIST_1A\n   1024\n"
        "database_id -s5 TIMIT\n"
        "database_version -s3 1.0\n"
        "channel_count -i 1\n"
        f"sample_count -i {samples.size}\n"
        f"sample_rate -i {rate}\n"
        "sample_min -i -32768\n"
        "sample_max -i 32767\n"
        "sample_n_bytes -i 2\n"
        "sample_byte_format -s2 01\n"
        "sample_sig_bits -i 16\n"
        "sample_coding -s3 pcm\n"
        "end_head\n"
    ).encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.ljust(1024, b" ") + samples.astype("<i2").tobytes())


PHN = "0 1000 h#\n1000 2000 sh\n2000 2600 ix\n2600 2700 q\n2700 4000 zh\n4000 4800 h#\n"


def make_tree(root, rate=16000):
    """Two training speakers in two dialect regions, one core and one other test speaker."""
    rng = np.random.default_rng(0)
    speakers = [
        ("TRAIN/DR1/FCJF0", ("SA1", "SI1027", "SX37")),
        ("TRAIN/DR2/MKLS0", ("SI1437", "SX177")),
        ("TEST/DR1/FELC0", ("SI1386", "SX126")),  # core test speaker
        ("TEST/DR1/MDAC0", ("SI1261",)),  # complete test set only
    ]
    for speaker, sentences in speakers:
        for sentence in sentences:
            base = root / speaker / sentence
            write_sphere(base.with_suffix(".WAV"), rng.integers(-3000, 3000, 4800), rate)
            base.with_suffix(".PHN").write_text(PHN)
    return root


def test_sphere_audio_reads_back_exactly(tmp_path):
    samples = np.arange(-2000, 2000, 7, dtype=np.int16)
    write_sphere(tmp_path / "x.WAV", samples)
    np.testing.assert_array_equal(read_audio(tmp_path / "x.WAV"), samples / 32768.0)


def test_splits_core_test_and_sa_sentences(tmp_path):
    root = make_tree(tmp_path / "timit")
    train = list_timit(root, "train")
    assert [u.id for u in train] == [
        "DR1_FCJF0_SI1027", "DR1_FCJF0_SX37", "DR2_MKLS0_SI1437", "DR2_MKLS0_SX177"
    ]  # fmt: skip
    assert len(list_timit(root, "train", include_sa=True)) == 5
    assert {u.speaker for u in list_timit(root, "test")} == {"FELC0", "MDAC0"}
    assert {u.speaker for u in list_timit(root, "core_test")} == {"FELC0"}
    splits = timit_splits(root, "core_test")
    assert {u.id for u in splits["val"]}.isdisjoint(u.id for u in splits["train"])
    assert len(splits["train"]) + len(splits["val"]) == 4


def test_phn_is_read_and_folded_to_39(tmp_path):
    root = make_tree(tmp_path / "timit")
    utterance = list_timit(root, "core_test")[0]
    segments = read_phn(utterance.phn, 4800)
    assert segments[1] == (1000, 2000, "sh")
    # h# -> sil, ix -> ih, q deleted, zh -> sh
    assert folded_phones(segments) == ["sil", "sh", "ih", "sh", "sil"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1000 h#\n1000 2000 xx\n", "line 2: phone 'xx' is not in the 61-phone set"),
        ("0 1000 h#\n1000 9000 sh\n", "past the end of the audio"),
        ("0 1000\n", "expected 'start end phone'"),
        ("0 a h#\n", "integer sample indices"),
        ("500 100 h#\n", "start < end"),
        ("", "no phone segments"),
    ],
)
def test_bad_phn_files_are_rejected_with_file_and_line(tmp_path, text, message):
    path = tmp_path / "SI1.PHN"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_phn(path, 4800)
    assert str(path) in str(err.value)


def test_missing_parts_of_the_tree_are_reported(tmp_path):
    with pytest.raises(InputError, match="TIMIT directory not found"):
        list_timit(tmp_path / "nowhere", "train")
    root = make_tree(tmp_path / "timit")
    (root / "TEST/DR1/MDAC0/SI1261.PHN").unlink()
    with pytest.raises(InputError, match="no matching .PHN"):
        list_timit(root, "test")
    with pytest.raises(InputError, match="split"):
        list_timit(root, "dev")


def test_phn_files_are_found_in_any_letter_case(tmp_path):
    root = make_tree(tmp_path / "timit")
    speaker = root / "TEST/DR1/MDAC0"
    (speaker / "SI1261.WAV").rename(speaker / "SI1261.wav")  # .wav beside .PHN
    assert [u.phn.name for u in list_timit(root, "test") if u.speaker == "MDAC0"] == ["SI1261.PHN"]


def test_a_tree_that_leaves_a_split_empty_is_refused(tmp_path):
    root = make_tree(tmp_path / "timit")
    for path in (root / "TRAIN/DR2").rglob("*"):
        if path.is_file():
            path.unlink()
    (root / "TRAIN/DR2/MKLS0").rmdir()
    with pytest.raises(InputError, match="TIMIT train split"):
        timit_splits(root, "core_test")  # the one training speaker is held out for validation


def test_float_audio_far_past_full_scale_is_refused(tmp_path):
    import soundfile as sf

    path = tmp_path / "loud.wav"
    sf.write(path, np.full(1600, 1e30, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="expected audio in \\[-1, 1\\]"):
        read_audio(path)
