"""eSpeak NG through ctypes: speech audio with time-aligned phoneme events.

The ``espeakng-loader`` package ships ``libespeak-ng`` and its voice data; this module loads
that library and calls its C API (``speak_lib.h`` of espeak-ng 1.52): ``espeak_Initialize``
in synchronous mode with phoneme events on, ``espeak_SetVoiceByName`` (``"en-us+m3"``: accent
plus voice variant), ``espeak_SetParameter`` (rate, pitch, pitch range) and ``espeak_Synth``.
The synthesis callback receives 16-bit samples at 22050 Hz and ``espeakEVENT_PHONEME`` events,
each with the phoneme mnemonic and the sample where it starts.

Determinism: the library carries state from one utterance to the next (phoneme times drift by
a few samples) and draws random numbers for voice roughness. :func:`synthesize_many` therefore
loads and initialises the library afresh for every utterance, in a single-use process forked
from a small fork server (:func:`serve`, a ``python -m lstmforge.data.espeak`` subprocess that
imports only numpy and ctypes), and seeds its random numbers (``espeak_ng_SetRandSeed``): the
same request always gives the same samples. Requests and results travel between this process
and its own server as pickles over pipes.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmforge.errors import InputError

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_RATE, _PITCH, _RANGE = 1, 3, 4
_CHARS_UTF8 = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Synthesis:
    """One synthesised utterance: int16 ``audio`` at ``sample_rate`` and its phoneme events
    ``(mnemonic, start_sample)`` in time order (pauses included, as eSpeak reports them)."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[tuple[str, int]]


@dataclass(frozen=True)
class SynthesisRequest:
    """What to say and how: ``voice`` is ``accent+variant`` (e.g. ``"en-us+m3"``), ``rate`` in
    words per minute, ``pitch`` and ``pitch_range`` on eSpeak's 0-100 scale, ``seed`` for the
    library's random numbers."""

    text: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    seed: int = 0


def data_path() -> Path:
    """The voice data shipped by ``espeakng-loader``."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def check_voice(voice: str) -> None:
    """InputError unless ``voice`` is ``accent`` or ``accent+variant`` of the shipped data."""
    root = data_path()
    accents = {p.name.lower() for p in (root / "lang").rglob("*") if p.is_file()}
    variants = {p.name for p in (root / "voices" / "!v").iterdir()}
    accent, _, variant = voice.partition("+")
    if accent.lower() not in accents or (variant and variant not in variants):
        raise InputError(f"eSpeak voice {voice!r} is not available in {root}")


class Espeak:
    """The library, loaded and initialised in this process. Synthesise at most once per
    process for reproducible output (see the module docstring); :func:`synthesize_many` does."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), options
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _SynthCallback(self._on_audio)  # kept alive as long as self
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples: int, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self._events.append((event.id.string.decode("ascii"), int(event.sample)))
            i += 1
        return 0

    def synthesize(self, request: SynthesisRequest) -> Synthesis:
        """Speak ``request.text`` with its voice, rate, pitch, pitch range and random seed."""
        self._lib.espeak_ng_SetRandSeed(request.seed)
        if self._lib.espeak_SetVoiceByName(request.voice.encode()) != 0:
            raise RuntimeError(f"espeak_SetVoiceByName failed for {request.voice!r}")
        settings = ((_RATE, request.rate), (_PITCH, request.pitch), (_RANGE, request.pitch_range))
        for parameter, value in settings:
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks, self._events = [], []
        data = request.text.encode("utf-8")
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {request.text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(audio, self.sample_rate, list(self._events))


def _synthesize_in_child(request: SynthesisRequest) -> tuple[str, object]:
    """Fork; the child loads the library afresh, synthesises and sends back the result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(read_fd)
        try:
            result: tuple[str, object] = ("ok", Espeak().synthesize(request))
        except Exception as err:  # reported to the caller, raised there
            result = ("error", f"{type(err).__name__}: {err}")
        with os.fdopen(write_fd, "wb") as pipe:
            pickle.dump(result, pipe)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        result = pickle.load(pipe)
    os.waitpid(pid, 0)
    return result


def serve() -> None:
    """The fork server: read pickled requests on stdin, answer each from a fresh child.

    Run as ``python -m lstmforge.data.espeak`` by :func:`synthesize_many`; being a small
    process (numpy and ctypes only), it forks quickly.
    """
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(_synthesize_in_child(request), answers)
        answers.flush()


def synthesize_many(requests: Iterable[SynthesisRequest]) -> Iterator[Synthesis]:
    """Synthesise each request in its own fresh process (results in order; deterministic).

    The requests go to one fork server (:func:`serve`), started here and stopped at the end.
    """
    requests = list(requests)
    for request in requests:
        check_voice(request.voice)
    server = subprocess.Popen(
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        for request in requests:
            pickle.dump(request, server.stdin)
            server.stdin.flush()
            status, value = pickle.load(server.stdout)
            if status != "ok":
                raise RuntimeError(f"eSpeak synthesis failed for {request.text!r}: {value}")
            yield value
    finally:
        server.stdin.close()
        server.wait()


def synthesize(
    text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int = 0
) -> Synthesis:
    """Synthesise one utterance (see :func:`synthesize_many`)."""
    return next(synthesize_many([SynthesisRequest(text, voice, rate, pitch, pitch_range, seed)]))


if __name__ == "__main__":  # pickle the classes under their importable names
    from lstmforge.data import espeak

    espeak.serve()
