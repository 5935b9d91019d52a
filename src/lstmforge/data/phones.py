"""The phone inventory shared by every speech corpus, and the maps into it.

* :data:`PHONES`: the 39 phones of Lee & Hon's TIMIT folding (K.-F. Lee and H.-W. Hon,
  "Speaker-independent phone recognition using hidden Markov models", IEEE Trans. ASSP 37(11),
  1989), ``sil`` included. Models are trained and scored on this inventory.
* :data:`TIMIT_FOLDING`: the 61 TIMIT phones onto :data:`PHONES` (``q``, the glottal stop, is
  deleted; closures, ``pau``, ``epi`` and ``h#`` become ``sil``).
* :data:`ESPEAK_TO_PHONES`: eSpeak NG's English phoneme mnemonics (as its phoneme events and
  ``espeak_TextToPhonemes`` print them, e.g. ``aI3``, ``t#``, ``@L``) onto :data:`PHONES`. The
  synthetic corpus uses eSpeak's US English phoneme tables (``en-us``, ``en-us-nyc``), which are
  rhotic, so r-coloured vowels map to a vowel followed by ``r`` (``A@`` -> ``aa r``) or to
  ``er``. Stress and syllable marks (``' , % =``) are stripped first; pauses (mnemonics starting
  with ``_``) carry no phone. The map:

  ====================  ===========  ====================  ===========
  eSpeak                phones       eSpeak                phones
  ====================  ===========  ====================  ===========
  ``@ @2 @5 V a#``      ah           ``3 3: IR VR``        er
  ``a aa``              ae           ``0 O: O2 A:``        aa
  ``A@ O@ o@``          aa r         ``e@``                eh r
  ``E e``               eh           ``eI``                ey
  ``I I2 I#``           ih           ``i@ i@3``            ih r
  ``i i:``              iy           ``OI``                oy
  ``oU oU#``            ow           ``U``                 uh
  ``U@``                uh r         ``u:``                uw
  ``aI``                ay           ``aI3 aI@``           ay er
  ``aU``                aw           ``aU@``               aw er
  ``@L``                l            ``n-``                n
  ``t#``                dx           ``?``                 (deleted, as TIMIT ``q``)
  ``T D S Z``           th dh sh sh  ``N j h``             ng y hh
  ``tS dZ``             ch jh        ``x``                 k
  ``w#``                w            ``r-`` (linking r)    r
  ``;`` (palatal mark)  (none)       other consonants      same letter
  ====================  ===========  ====================  ===========
"""

from __future__ import annotations

from lstmforge.errors import InputError

PHONES: tuple[str, ...] = (
    "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "oy", "ow", "uh", "uw", "er",
    "l", "r", "y", "w", "m", "n", "ng",
    "ch", "jh", "dh", "b", "d", "dx", "g", "p", "t", "k", "z", "v", "f", "th", "s", "sh", "hh",
    "sil",
)  # fmt: skip
"""Lee & Hon's 39 phones."""

PHONE_INDEX: dict[str, int] = {p: i for i, p in enumerate(PHONES)}

TIMIT_PHONES: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "b", "bcl", "ch", "d", "dcl", "dh",
    "dx", "eh", "el", "em", "en", "eng", "epi", "er", "ey", "f", "g", "gcl", "h#", "hh", "hv",
    "ih", "ix", "iy", "jh", "k", "kcl", "l", "m", "n", "ng", "nx", "ow", "oy", "p", "pau", "pcl",
    "q", "r", "s", "sh", "t", "tcl", "th", "uh", "uw", "ux", "v", "w", "y", "z", "zh",
)  # fmt: skip
"""The 61 phones of the TIMIT transcriptions (.PHN files)."""

_TIMIT_MERGES: dict[str, str | None] = {
    "ao": "aa",
    "ax": "ah",
    "ax-h": "ah",
    "axr": "er",
    "hv": "hh",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n",
    "nx": "n",
    "eng": "ng",
    "zh": "sh",
    "ux": "uw",
    "pcl": "sil",
    "tcl": "sil",
    "kcl": "sil",
    "bcl": "sil",
    "dcl": "sil",
    "gcl": "sil",
    "h#": "sil",
    "pau": "sil",
    "epi": "sil",
    "q": None,
}

TIMIT_FOLDING: dict[str, str | None] = {p: _TIMIT_MERGES.get(p, p) for p in TIMIT_PHONES}
"""61 -> 39 folding of Lee & Hon (1989); ``None`` means the phone is deleted."""

ESPEAK_TO_PHONES: dict[str, tuple[str, ...]] = {
    # vowels
    "@": ("ah",), "@2": ("ah",), "@5": ("ah",), "V": ("ah",), "a#": ("ah",),
    "3": ("er",), "3:": ("er",), "IR": ("er",), "VR": ("er",),
    "a": ("ae",), "aa": ("ae",),
    "0": ("aa",), "O:": ("aa",), "O2": ("aa",), "A:": ("aa",),
    "A@": ("aa", "r"), "O@": ("aa", "r"), "o@": ("aa", "r"),
    "e@": ("eh", "r"), "E": ("eh",), "e": ("eh",), "eI": ("ey",),
    "I": ("ih",), "I2": ("ih",), "I#": ("ih",), "i@": ("ih", "r"), "i@3": ("ih", "r"),
    "i": ("iy",), "i:": ("iy",), "OI": ("oy",), "oU": ("ow",), "oU#": ("ow",),
    "U": ("uh",), "U@": ("uh", "r"), "u:": ("uw",),
    "aI": ("ay",), "aI3": ("ay", "er"), "aI@": ("ay", "er"),
    "aU": ("aw",), "aU@": ("aw", "er"),
    # syllabic consonants, flap, glottal stop
    "@L": ("l",), "n-": ("n",), "t#": ("dx",), "?": (),
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("sh",), "h": ("hh",), "x": ("k",),
    "m": ("m",), "n": ("n",), "N": ("ng",), "l": ("l",), "r": ("r",),
    "w": ("w",), "w#": ("w",), "r-": ("r",), ";": (), "j": ("y",), "tS": ("ch",), "dZ": ("jh",),
}  # fmt: skip
"""eSpeak NG English (US tables) phoneme mnemonic -> phones of :data:`PHONES`."""

_STRESS_MARKS = "',%="


def espeak_to_phones(mnemonic: str) -> tuple[str, ...]:
    """Map one eSpeak phoneme mnemonic (stress marks allowed) onto :data:`PHONES`.

    Pauses (``_``, ``_:``, ``_!`` ...) give ``()``. An unknown mnemonic is an
    :class:`~lstmforge.errors.InputError`.
    """
    name = mnemonic.lstrip(_STRESS_MARKS)
    if name.startswith("_") or name == "":
        return ()
    if name not in ESPEAK_TO_PHONES:
        raise InputError(f"eSpeak phoneme {mnemonic!r} is not in the phone map (data/phones.py)")
    return ESPEAK_TO_PHONES[name]


def fold_timit(phone: str) -> str | None:
    """Fold one TIMIT phone (61-phone set) onto :data:`PHONES`; ``None`` when it is deleted."""
    if phone not in TIMIT_FOLDING:
        raise InputError(f"{phone!r} is not a TIMIT phone")
    return TIMIT_FOLDING[phone]


def encode_phones(phones: list[str] | tuple[str, ...]) -> list[int]:
    """Indices of ``phones`` in :data:`PHONES` (InputError on a phone outside it)."""
    unknown = [p for p in phones if p not in PHONE_INDEX]
    if unknown:
        raise InputError(f"phones {unknown} are not in the 39-phone inventory")
    return [PHONE_INDEX[p] for p in phones]


def decode_phones(indices: list[int]) -> list[str]:
    """Phone names of indices into :data:`PHONES`."""
    return [PHONES[i] for i in indices]
