"""A synthetic phone-labelled speech corpus made offline with eSpeak NG.

Sentences come from a small built-in grammar over a few hundred everyday English words; each
utterance is spoken by one *speaker* (eSpeak's US English tables ``en-us`` or ``en-us-nyc`` plus
a voice variant such as ``m3`` or ``f2``) at a random speaking rate, pitch and pitch range, then
shifted in level, padded with silence and mixed with white noise at a random SNR. Phone labels
come from eSpeak's own phoneme events (mnemonic + start sample), mapped onto the 39-phone
inventory by :func:`lstmforge.data.phones.espeak_to_phones`.

Splits hold out speakers: the voice variants of ``val`` and ``test`` never occur in ``train``
(:data:`SPLIT_VARIANTS`). Everything is drawn from ``numpy.random.default_rng([seed, index])``,
so utterance ``index`` is the same whatever the corpus size, and regenerating gives the same
files. The corpus directory holds::

    manifest.json                     parameters + one record per utterance
    {train,val,test}/utt_NNNNNN.wav   16 kHz 16-bit PCM
    {train,val,test}/utt_NNNNNN.phn   TIMIT-style "start end phone" lines (16 kHz samples)

:func:`generate_corpus` returns the manifest path and reuses a corpus already on disk when its
manifest has the same parameters and every file is present; it never writes over a corpus made
with other parameters (:func:`corpus_parameters` tells what a directory holds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmforge.data.audio import SAMPLE_RATE, librosa_resample, write_wav
from lstmforge.data.phones import PHONES, espeak_to_phones
from lstmforge.errors import InputError
from lstmforge.io import atomic_path, write_json

if TYPE_CHECKING:
    from lstmforge.data.espeak import Synthesis, SynthesisRequest

FORMAT = "lstmforge-synthetic-speech"
VERSION = 2
ACCENTS = ("en-us", "en-us-nyc")
SPLIT_VARIANTS: dict[str, tuple[str, ...]] = {
    "train": (
        "m1", "m2", "m4", "m5", "m6", "m8", "f1", "f2", "f4",
        "Alex", "Andy", "adam", "aunty", "edward", "grandpa", "john", "max", "paul", "steph",
    ),
    "val": ("m7", "f5", "benjamin"),
    "test": ("m3", "f3", "david", "linda"),
}  # fmt: skip
"""eSpeak voice variants per split: val and test speakers are held out of training."""

RATE_WPM = (130, 200)
PITCH = (25, 75)
PITCH_RANGE = (20, 80)
SNR_DB = (15.0, 40.0)
GAIN_DB = (-18.0, 0.0)
SILENCE_S = (0.05, 0.3)

_DETERMINERS = ("the", "a", "this", "that", "every", "one", "my", "your", "our", "their")
_ADJECTIVES = (
    "big", "small", "old", "new", "red", "green", "blue", "dark", "bright", "quiet", "loud",
    "warm", "cold", "happy", "busy", "tired", "young", "long", "short", "heavy", "light", "clean",
    "strange", "simple", "quick", "slow", "gentle", "brave", "careful", "famous", "hungry",
    "yellow", "empty", "rough", "smooth", "golden", "silver", "wooden", "early", "late",
)  # fmt: skip
_NOUNS = (
    "dog", "cat", "horse", "bird", "fish", "child", "teacher", "doctor", "farmer", "driver",
    "house", "garden", "river", "mountain", "window", "table", "chair", "book", "letter", "door",
    "car", "train", "boat", "road", "bridge", "city", "village", "market", "kitchen", "school",
    "apple", "bread", "water", "coffee", "music", "picture", "story", "friend", "neighbor", "king",
    "queen", "soldier", "student", "engine", "machine", "computer", "phone", "clock", "shoe",
    "jacket", "forest", "island", "ocean", "winter", "summer", "morning", "evening", "voice",
    "question", "answer", "number", "paper", "pencil", "rabbit", "tiger", "monkey", "baby",
    "brother", "sister", "mother", "father", "captain", "pilot", "nurse", "judge", "thief",
)  # fmt: skip
_VERBS = (
    "saw", "found", "took", "made", "gave", "moved", "carried", "opened", "closed", "painted",
    "washed", "watched", "followed", "helped", "pushed", "pulled", "bought", "sold", "built",
    "broke", "fixed", "liked", "loved", "wanted", "needed", "visited", "cleaned", "counted",
    "measured", "answered", "changed", "checked", "dropped", "lifted", "touched", "heard",
    "remembered", "forgot", "chose", "caught", "threw", "kicked", "shared", "brought", "drew",
)  # fmt: skip
_INTRANSITIVE = (
    "slept", "laughed", "waited", "arrived", "left", "danced", "sang", "smiled", "jumped",
    "worked", "walked", "talked", "listened", "stayed", "returned", "disappeared", "shouted",
)  # fmt: skip
_PLACES = (
    "in the garden", "near the river", "at the station", "on the table", "under the bridge",
    "behind the house", "in the morning", "after lunch", "before dinner", "in the city",
    "at school", "on the boat", "by the window", "in the forest", "on sunday", "at night",
)  # fmt: skip
_NAMES = (
    "john", "mary", "peter", "susan", "david", "linda", "james", "emma", "thomas", "sarah",
    "robert", "alice", "george", "helen", "michael", "laura", "paul", "anna", "mark", "julia",
)  # fmt: skip
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve")
_ADVERBS = ("quickly", "slowly", "quietly", "again", "today", "yesterday", "often", "never")

VOCABULARY: tuple[str, ...] = tuple(
    sorted(
        {
            word
            for group in (
                _DETERMINERS, _ADJECTIVES, _NOUNS, _VERBS, _INTRANSITIVE, _PLACES, _NAMES,
                _NUMBERS, _ADVERBS, ("and", "then", "because", "it", "was", "very", "is"),
            )
            for phrase in group
            for word in phrase.split()
        }
    )
)  # fmt: skip
"""Every word the sentence generator can produce."""


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _noun_phrase(rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return _pick(rng, _NAMES)
    if rng.random() < 0.15:
        return f"{_pick(rng, _NUMBERS)} {_pick(rng, _NOUNS)}s"
    words = [_pick(rng, _DETERMINERS)]
    if rng.random() < 0.6:
        words.append(_pick(rng, _ADJECTIVES))
    words.append(_pick(rng, _NOUNS))
    return " ".join(words)


def _clause(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.5:
        parts = [_noun_phrase(rng), _pick(rng, _VERBS), _noun_phrase(rng)]
    elif kind < 0.75:
        parts = [_noun_phrase(rng), _pick(rng, _INTRANSITIVE)]
    else:
        parts = [_noun_phrase(rng), "was very", _pick(rng, _ADJECTIVES)]
    if rng.random() < 0.4:
        parts.append(_pick(rng, _PLACES))
    if rng.random() < 0.2:
        parts.append(_pick(rng, _ADVERBS))
    return " ".join(parts)


def make_sentence(rng: np.random.Generator) -> str:
    """One sentence of the built-in grammar (one clause, sometimes two joined)."""
    sentence = _clause(rng)
    if rng.random() < 0.25:
        sentence += f" {_pick(rng, ('and', 'then', 'because'))} {_clause(rng)}"
    return sentence


@dataclass(frozen=True)
class UtteranceSettings:
    """Everything drawn at random for one utterance."""

    split: str
    text: str
    accent: str
    variant: str
    rate_wpm: int
    pitch: int
    pitch_range: int
    gain_db: float
    snr_db: float
    lead_silence_s: float
    tail_silence_s: float

    @property
    def voice(self) -> str:
        """eSpeak voice name: accent plus variant."""
        return f"{self.accent}+{self.variant}"

    @property
    def speaker(self) -> str:
        """The speaker identity (accent and variant)."""
        return f"{self.accent}:{self.variant}"


def split_of(index: int) -> str:
    """Split of utterance ``index``: one in ten is test, one in ten val, the rest train."""
    return {0: "test", 1: "val"}.get(index % 10, "train")


def draw_settings(seed: int, index: int) -> UtteranceSettings:
    """The random settings of utterance ``index`` (depends only on ``seed`` and ``index``)."""
    rng = np.random.default_rng([seed, index])
    split = split_of(index)
    return UtteranceSettings(
        split=split,
        text=make_sentence(rng),
        accent=_pick(rng, ACCENTS),
        variant=_pick(rng, SPLIT_VARIANTS[split]),
        rate_wpm=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
        pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
        pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
        gain_db=round(float(rng.uniform(*GAIN_DB)), 3),
        snr_db=round(float(rng.uniform(*SNR_DB)), 3),
        lead_silence_s=round(float(rng.uniform(*SILENCE_S)), 3),
        tail_silence_s=round(float(rng.uniform(*SILENCE_S)), 3),
    )


def phone_segments(
    phonemes: list[tuple[str, int]], num_samples: int, scale: float, offset: int
) -> list[tuple[int, int, str]]:
    """TIMIT-style ``(start, end, phone)`` segments from eSpeak phoneme events.

    Each event lasts until the next one (the last until ``num_samples``, in eSpeak samples);
    sample indices are multiplied by ``scale`` (rate change) and shifted by ``offset``. A
    mnemonic that maps to two phones (``A@`` -> ``aa r``) has its segment split evenly.
    """
    segments = []
    for k, (mnemonic, start) in enumerate(phonemes):
        end = phonemes[k + 1][1] if k + 1 < len(phonemes) else num_samples
        phones = espeak_to_phones(mnemonic)
        if not phones or end <= start:
            continue
        bounds = np.linspace(start, end, len(phones) + 1) * scale + offset
        for phone, a, b in zip(phones, bounds[:-1], bounds[1:], strict=True):
            segments.append((int(round(a)), int(round(b)), phone))
    return segments


def synthesis_request(settings: UtteranceSettings, seed: int, index: int) -> SynthesisRequest:
    """The eSpeak request of one utterance (its random seed derived from ``seed``, ``index``)."""
    from lstmforge.data.espeak import SynthesisRequest

    espeak_seed = int(np.random.default_rng([seed, index, 2]).integers(2**31 - 1))
    return SynthesisRequest(
        settings.text,
        settings.voice,
        settings.rate_wpm,
        settings.pitch,
        settings.pitch_range,
        espeak_seed,
    )


def render_utterance(
    settings: UtteranceSettings, synthesis: Synthesis, seed: int, index: int
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Resample eSpeak's output to 16 kHz, pad with silence, scale the level and add noise.

    Returns the audio and its phone segments (TIMIT-style, in 16 kHz samples).
    """
    if synthesis.audio.size == 0:
        raise RuntimeError(f"eSpeak produced no audio for {settings.text!r}")
    speech = librosa_resample(
        synthesis.audio.astype(np.float32) / 32768.0, synthesis.sample_rate, SAMPLE_RATE
    )
    lead = int(settings.lead_silence_s * SAMPLE_RATE)
    tail = int(settings.tail_silence_s * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    peak = float(np.max(np.abs(audio)))
    audio = audio * (0.9 / peak) * 10.0 ** (settings.gain_db / 20.0)
    noise_rng = np.random.default_rng([seed, index, 1])
    speech_power = float(np.mean(audio[lead : lead + speech.size] ** 2))
    noise_std = np.sqrt(speech_power / 10.0 ** (settings.snr_db / 10.0))
    audio = np.clip(audio + noise_rng.normal(0.0, noise_std, audio.size), -1.0, 1.0)
    scale = SAMPLE_RATE / synthesis.sample_rate
    segments = phone_segments(synthesis.phonemes, synthesis.audio.size, scale, lead)
    segments = [(a, min(b, lead + speech.size), p) for a, b, p in segments]
    return audio.astype(np.float32), segments


def write_phn(path: Path, segments: list[tuple[int, int, str]]) -> None:
    """Write ``start end phone`` lines (TIMIT .PHN format), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{a} {b} {p}\n" for a, b, p in segments))


def _parameters(num_utterances: int, seed: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": seed,
        "num_utterances": num_utterances,
        "sample_rate": SAMPLE_RATE,
        "phones": list(PHONES),
    }


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a corpus manifest (InputError naming the file on anything wrong)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise InputError(f"{path}: corpus manifest not found (generate the corpus first)")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: corrupt corpus manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("parameters", {}).get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} manifest")
    if not isinstance(manifest.get("utterances"), list):
        raise InputError(f"{path}: manifest has no 'utterances' list")
    return manifest


def corpus_parameters(out_dir: str | Path) -> dict[str, Any] | None:
    """The generation parameters of the corpus in ``out_dir`` (None if it holds none)."""
    try:
        return read_manifest(Path(out_dir) / "manifest.json")["parameters"]
    except InputError:
        return None


def _cached(manifest_path: Path, parameters: dict[str, Any]) -> bool:
    try:
        manifest = read_manifest(manifest_path)
    except InputError:
        return False
    root = manifest_path.parent
    return manifest["parameters"] == parameters and all(
        (root / u["wav"]).is_file() and (root / u["phn"]).is_file() for u in manifest["utterances"]
    )


def generate_corpus(
    out_dir: str | Path,
    num_utterances: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    replace: bool = False,
) -> Path:
    """Generate (or reuse) the synthetic corpus in ``out_dir``; returns the manifest path.

    ``num_utterances`` in all, split 80/10/10 into train/val/test by index with held-out
    speakers (:func:`split_of`, :data:`SPLIT_VARIANTS`). ``progress(done, total)`` is called
    after each utterance. A corpus made with other parameters is refused, or with ``replace``
    (for a directory the caller owns) regenerated in its place. A corpus of 400 utterances
    (~17 minutes of speech) takes about a minute on one core (eSpeak runs in a fresh process
    per utterance, see data/espeak.py).
    """
    if num_utterances < 10:
        raise InputError(
            f"num_utterances: expected at least 10 (one per split), got {num_utterances}"
        )
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    parameters = _parameters(num_utterances, seed)
    if _cached(manifest_path, parameters):
        return manifest_path
    existing = corpus_parameters(out_dir)
    if existing is not None and existing != parameters and not replace:
        raise InputError(
            f"{out_dir} holds a synthetic corpus of {existing.get('num_utterances')} utterances "
            f"(seed {existing.get('seed')}, generator version {existing.get('version')}); asked "
            f"for {num_utterances} (seed {seed}, version {VERSION}): ask for that corpus's size "
            "and seed, or use another directory"
        )
    from lstmforge.data.espeak import synthesize_many

    all_settings = [draw_settings(seed, index) for index in range(num_utterances)]
    syntheses = synthesize_many(
        synthesis_request(settings, seed, index) for index, settings in enumerate(all_settings)
    )
    records = []
    for index, (settings, synthesis) in enumerate(zip(all_settings, syntheses, strict=True)):
        audio, segments = render_utterance(settings, synthesis, seed, index)
        name = f"{settings.split}/utt_{index:06d}"
        wav, phn = out_dir / f"{name}.wav", out_dir / f"{name}.phn"
        write_wav(wav, audio)
        write_phn(phn, segments)
        records.append(
            asdict(settings)
            | {
                "id": f"utt_{index:06d}",
                "speaker": settings.speaker,
                "wav": f"{name}.wav",
                "phn": f"{name}.phn",
                "num_samples": int(audio.size),
                "num_phones": len(segments),
                "sha256": _file_digest(wav),
            }
        )
        if progress is not None:
            progress(index + 1, num_utterances)
    write_json(manifest_path, {"parameters": parameters, "utterances": records})
    return manifest_path
