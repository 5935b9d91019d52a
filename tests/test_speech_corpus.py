"""The eSpeak NG corpus (deterministic, cached, held-out speakers, valid labels) and features."""

import numpy as np
import pytest

from lstmforge.data.audio import read_audio
from lstmforge.data.espeak import SynthesisRequest, synthesize, synthesize_many
from lstmforge.data.phones import PHONES, espeak_to_phones
from lstmforge.data.speech_synthetic import (
    SPLIT_VARIANTS,
    VOCABULARY,
    draw_settings,
    generate_corpus,
    phone_segments,
    read_manifest,
)
from lstmforge.data.timit import read_phn
from lstmforge.errors import InputError
from lstmforge.tasks.speech.features import (
    FeatureConfig,
    extract_features,
    log_mel_deltas,
    stack_frames,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), 10, seed=3)


def test_regenerating_gives_the_same_files_and_reuses_the_cache(corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", 10, seed=3)
    assert again.read_bytes() == corpus.read_bytes()
    for record in read_manifest(corpus)["utterances"]:
        for key in ("wav", "phn"):
            assert (again.parent / record[key]).read_bytes() == (
                corpus.parent / record[key]
            ).read_bytes()
    stamp = again.stat().st_mtime_ns
    assert generate_corpus(tmp_path / "again", 10, seed=3) == again
    assert again.stat().st_mtime_ns == stamp  # reused, not rewritten
    # a corpus made with other parameters is never written over, unless the caller owns it
    with pytest.raises(InputError, match=r"holds a synthetic corpus of 10 utterances \(seed 3"):
        generate_corpus(tmp_path / "again", 12, seed=3)
    with pytest.raises(InputError, match="ask for that corpus.s size and seed"):
        generate_corpus(tmp_path / "again", 10, seed=4)
    assert again.read_bytes() == corpus.read_bytes()
    replaced = generate_corpus(tmp_path / "again", 12, seed=3, replace=True)
    assert len(read_manifest(replaced)["utterances"]) == 12
    # another seed draws other sentences and voices
    texts = [u["text"] for u in read_manifest(corpus)["utterances"]]
    assert [draw_settings(4, i).text for i in range(10)] != texts
    assert [draw_settings(3, i).text for i in range(10)] == texts


def test_test_and_val_speakers_are_held_out(corpus):
    assert not set(SPLIT_VARIANTS["test"]) & set(SPLIT_VARIANTS["train"])
    assert not set(SPLIT_VARIANTS["val"]) & set(SPLIT_VARIANTS["train"])
    utterances = read_manifest(corpus)["utterances"]
    by_split = {}
    for u in utterances:
        by_split.setdefault(u["split"], set()).add(u["speaker"])
    assert set(by_split) == {"train", "val", "test"}
    assert not by_split["test"] & by_split["train"]
    assert not by_split["val"] & by_split["train"]


def test_labels_are_inventory_phones_inside_the_audio(corpus):
    for record in read_manifest(corpus)["utterances"]:
        audio = read_audio(corpus.parent / record["wav"])
        assert audio.size == record["num_samples"] and np.abs(audio).max() <= 1.0
        segments = read_phn(corpus.parent / record["phn"], audio.size, inventory=PHONES)
        assert len(segments) == record["num_phones"] > 3
        starts = [a for a, _, _ in segments]
        assert starts == sorted(starts)
        # speech is louder than the leading silence + noise before the first phone
        first = segments[0][0]
        speech = audio[first : segments[-1][1]]
        assert np.mean(speech**2) > 2 * np.mean(audio[: max(first, 1)] ** 2)


def test_espeak_phonemes_of_known_words():
    for text, expected in [("cat", ["k", "ae", "t"]), ("fish", ["f", "ih", "sh"])]:
        synthesis = synthesize(text, "en-us+m1", 160, 50, 50)
        phones = [p for m, _ in synthesis.phonemes for p in espeak_to_phones(m)]
        assert phones == expected
        assert synthesis.sample_rate == 22050 and synthesis.audio.size > 2000


def test_every_vocabulary_word_maps_onto_the_inventory():
    text = " ".join(VOCABULARY)
    requests = [
        SynthesisRequest(text, f"{accent}+m1", 400, 50, 50) for accent in ("en-us", "en-us-nyc")
    ]
    for synthesis in synthesize_many(requests):
        phones = [p for m, _ in synthesis.phonemes for p in espeak_to_phones(m)]
        assert set(phones) <= set(PHONES) and len(phones) > len(VOCABULARY)


def test_synthesis_does_not_depend_on_what_was_said_before():
    request = SynthesisRequest("the quick brown fox", "en-us+f2", 170, 50, 50, seed=1)
    first, _, again = synthesize_many(
        [request, SynthesisRequest("hello", "en-us+m3", 120, 30, 60), request]
    )
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.phonemes == again.phonemes


def test_bad_corpus_requests(tmp_path):
    with pytest.raises(InputError, match="num_utterances"):
        generate_corpus(tmp_path, 5)
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "none")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt corpus manifest"):
        read_manifest(tmp_path)
    for voice in ("en-us+nobody", "xx-yy"):
        with pytest.raises(InputError, match="not available"):
            synthesize("cat", voice, 160, 50, 50)


def test_features_shapes_deltas_normalisation_and_stacking():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    cfg = FeatureConfig(n_mels=51, deltas=2)
    frames = log_mel_deltas(audio, cfg)
    assert frames.shape == (1 + 16000 // 160, 153) and cfg.input_size == 153  # 10 ms hop, centred
    normalised = extract_features(audio, cfg)
    np.testing.assert_allclose(normalised.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(axis=0), 1.0, atol=1e-3)
    # a tone rising in level by a constant factor per frame: Δ of log-mel is that log factor
    ramp = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000) * np.exp(np.arange(16000) / 4000)
    tone = log_mel_deltas(ramp.astype(np.float32), FeatureConfig(n_mels=20, deltas=1))
    band = np.argmax(tone[50, :20])
    slope = 2 * 160 / 4000  # power grows by exp(2 * hop / 4000) per frame
    assert tone[20:80, 20 + band] == pytest.approx(slope, rel=0.02)
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(
        stack_frames(x, stack=2, skip=2), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]
    )
    with pytest.raises(InputError, match="normalisation"):
        FeatureConfig(normalisation="cepstral")
    with pytest.raises(InputError, match="global normalisation"):
        extract_features(audio, FeatureConfig(normalisation="global"))


def test_phone_segments_from_events_hand_worked():
    events = [("k", 0), ("'A@", 100), ("_:", 300), ("t", 350)]
    # k lasts until the next event; A@ -> aa r split evenly; the pause has no phone; t runs to
    # the end; samples halved (rate change) and shifted by 10 (leading silence)
    assert phone_segments(events, 400, scale=0.5, offset=10) == [
        (10, 60, "k"), (60, 110, "aa"), (110, 160, "r"), (185, 210, "t")
    ]  # fmt: skip
