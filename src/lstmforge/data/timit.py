"""TIMIT on disk: the standard directory layout, NIST SPHERE audio and .PHN transcriptions.

Layout (LDC93S1; upper or lower case)::

    ROOT/TRAIN/DR1..DR8/<speaker>/<sentence>.WAV    NIST SPHERE, 16 kHz 16-bit PCM
    ROOT/TRAIN/DR1..DR8/<speaker>/<sentence>.PHN    "start end phone" per line, in samples
    ROOT/TEST/...

Speakers are named by sex and initials (``MDAB0``, ``FELC0``). Sentences ``SA1``/``SA2`` are read
by every speaker and are left out by default, as is usual for phone recognition. ``core_test``
is the 24-speaker core test set (two men and one woman from each dialect region; J. S.
Garofolo et al., "DARPA TIMIT acoustic-phonetic continuous speech corpus CD-ROM", NISTIR 4930,
1993, Sec. 3.1.2). Phones are folded from 61 to 39 with Lee & Hon's map
(:data:`lstmforge.data.phones.TIMIT_FOLDING`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lstmforge.data.phones import TIMIT_PHONES, fold_timit
from lstmforge.errors import InputError

CORE_TEST_SPEAKERS: frozenset[str] = frozenset(
    {
        "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0",
        "MLLL0", "MTLS0", "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0",
        "MGRT0", "MNJM0", "FDHC0", "MJLN0", "MPAM0", "FMLD0",
    }
)  # fmt: skip
"""The 24 speakers of TIMIT's core test set."""

SPLITS = ("train", "test", "core_test")


@dataclass(frozen=True)
class TimitUtterance:
    """One TIMIT sentence: its audio and phone files and who said it."""

    wav: Path
    phn: Path
    dialect: str
    speaker: str
    sentence: str

    @property
    def id(self) -> str:
        """``DR1_FELC0_SI1386``."""
        return f"{self.dialect}_{self.speaker}_{self.sentence}"


def read_phn(
    path: str | Path, num_samples: int, inventory: tuple[str, ...] = TIMIT_PHONES
) -> list[tuple[int, int, str]]:
    """Read a .PHN file: ``(start, end, phone)`` per line, validated.

    Each line must be two integer sample indices with ``0 <= start < end <= num_samples`` and a
    phone of ``inventory``; anything else is an :class:`~lstmforge.errors.InputError` naming
    the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: phone label file not found")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text .PHN file") from None
    segments = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}, line {number}"
        if len(fields) != 3:
            raise InputError(f"{where}: expected 'start end phone', got {line!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise InputError(f"{where}: start/end must be integer sample indices") from None
        phone = fields[2]
        if phone not in inventory:
            raise InputError(f"{where}: phone {phone!r} is not in the {len(inventory)}-phone set")
        if not 0 <= start < end:
            raise InputError(f"{where}: expected 0 <= start < end, got {start} {end}")
        if end > num_samples:
            raise InputError(
                f"{where}: segment ends at sample {end}, past the end of the audio "
                f"({num_samples} samples)"
            )
        segments.append((start, end, phone))
    if not segments:
        raise InputError(f"{path}: no phone segments")
    return segments


def folded_phones(segments: list[tuple[int, int, str]]) -> list[str]:
    """The 39-phone sequence of TIMIT segments (q deleted, repeats from folding kept apart)."""
    return [p for p in (fold_timit(phone) for _, _, phone in segments) if p is not None]


def _child(directory: Path, name: str) -> Path | None:
    """The entry of ``directory`` named ``name`` in any letter case."""
    for entry in directory.iterdir():
        if entry.name.upper() == name.upper():
            return entry
    return None


def list_timit(root: str | Path, split: str, include_sa: bool = False) -> list[TimitUtterance]:
    """The sentences of ``split`` (``train``, ``test`` or ``core_test``) under ``root``.

    ``test`` is the complete test set, ``core_test`` its 24 core speakers. ``SA`` sentences
    are included only with ``include_sa``. Every .WAV must have its .PHN.
    """
    if split not in SPLITS:
        raise InputError(f"TIMIT split: expected one of {SPLITS}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: TIMIT directory not found")
    part = _child(root, "TRAIN" if split == "train" else "TEST")
    if part is None or not part.is_dir():
        raise InputError(f"{root}: no {'TRAIN' if split == 'train' else 'TEST'} directory")
    utterances = []
    for dialect in sorted(p for p in part.iterdir() if p.is_dir()):
        if not dialect.name.upper().startswith("DR"):
            continue
        for speaker in sorted(p for p in dialect.iterdir() if p.is_dir()):
            if split == "core_test" and speaker.name.upper() not in CORE_TEST_SPEAKERS:
                continue
            for wav in sorted(speaker.iterdir()):
                if wav.suffix.upper() != ".WAV" or wav.name.upper().endswith(".WAV.WAV"):
                    continue
                sentence = wav.stem.upper()
                if sentence.startswith("SA") and not include_sa:
                    continue
                phn = _child(speaker, wav.stem + ".PHN")
                if phn is None or not phn.is_file():
                    raise InputError(f"{wav}: no matching .PHN file ({wav.stem}.PHN, any case)")
                utterances.append(
                    TimitUtterance(wav, phn, dialect.name.upper(), speaker.name.upper(), sentence)
                )
    if not utterances:
        raise InputError(f"{part}: no TIMIT sentences found for split {split!r}")
    return utterances
