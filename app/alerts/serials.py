"""Match keys derived from weapon serial numbers, makes and calibres, for cross-matching records."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Final

from app.alerts.schemas import SerialStatus

SERIAL_STATUSES: Final[frozenset[SerialStatus]] = frozenset(SerialStatus)
# A serial that cannot be read has no key, whatever text was recorded alongside it.
_UNKEYED_STATUSES: Final[frozenset[SerialStatus]] = frozenset(
    {SerialStatus.obliterated, SerialStatus.absent}
)
# A partly legible serial is keyed only when enough of it remains to be worth matching.
PARTIAL_MIN_LENGTH: Final[int] = 4

# Capital Cyrillic letters drawn like a Latin capital, as typed on a Cyrillic keyboard layout.
# The serial is upper-cased before this table is applied, so the lowercase forms
# (a, v, e, k, m, n, o, r, s, t, kh, u, i, je, dze) reach it as these capitals.
CYRILLIC_TO_LATIN: Final[dict[int, str]] = str.maketrans(
    {
        "\u0410": "A",  # CYRILLIC CAPITAL LETTER A
        "\u0412": "B",  # CYRILLIC CAPITAL LETTER VE
        "\u0415": "E",  # CYRILLIC CAPITAL LETTER IE
        "\u041a": "K",  # CYRILLIC CAPITAL LETTER KA
        "\u041c": "M",  # CYRILLIC CAPITAL LETTER EM
        "\u041d": "H",  # CYRILLIC CAPITAL LETTER EN
        "\u041e": "O",  # CYRILLIC CAPITAL LETTER O
        "\u0420": "P",  # CYRILLIC CAPITAL LETTER ER
        "\u0421": "C",  # CYRILLIC CAPITAL LETTER ES
        "\u0422": "T",  # CYRILLIC CAPITAL LETTER TE
        "\u0425": "X",  # CYRILLIC CAPITAL LETTER HA
        "\u0423": "Y",  # CYRILLIC CAPITAL LETTER U
        "\u04ae": "Y",  # CYRILLIC CAPITAL LETTER STRAIGHT U (Kazakh, Kyrgyz, Mongolian)
        "\u0406": "I",  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
        "\u04c0": "I",  # CYRILLIC LETTER PALOCHKA (Caucasian languages)
        "\u0408": "J",  # CYRILLIC CAPITAL LETTER JE
        "\u0405": "S",  # CYRILLIC CAPITAL LETTER DZE
    }
)

# Capital Greek letters drawn like a Latin capital. Lowercase Greek is upper-cased first, so
# nu folds with its capital to N (not to V) and eta to H: the key ignores case, so a letter
# and its capital must always fold alike.
GREEK_TO_LATIN: Final[dict[int, str]] = str.maketrans(
    {
        "\u0391": "A",  # GREEK CAPITAL LETTER ALPHA
        "\u0392": "B",  # GREEK CAPITAL LETTER BETA
        "\u0395": "E",  # GREEK CAPITAL LETTER EPSILON
        "\u0396": "Z",  # GREEK CAPITAL LETTER ZETA
        "\u0397": "H",  # GREEK CAPITAL LETTER ETA
        "\u0399": "I",  # GREEK CAPITAL LETTER IOTA
        "\u039a": "K",  # GREEK CAPITAL LETTER KAPPA
        "\u039c": "M",  # GREEK CAPITAL LETTER MU
        "\u039d": "N",  # GREEK CAPITAL LETTER NU
        "\u039f": "O",  # GREEK CAPITAL LETTER OMICRON
        "\u03a1": "P",  # GREEK CAPITAL LETTER RHO
        "\u03a4": "T",  # GREEK CAPITAL LETTER TAU
        "\u03a5": "Y",  # GREEK CAPITAL LETTER UPSILON
        "\u03a7": "X",  # GREEK CAPITAL LETTER CHI
    }
)

_LOOKALIKES: Final[dict[int, str]] = {**CYRILLIC_TO_LATIN, **GREEK_TO_LATIN}

# Characters a key keeps: letters and numbers. Modifier letters (Lm) are left out: the ones
# NFKC leaves alone are apostrophes, primes, tone marks and the Arabic tatweel, i.e. separators.
_KEY_CATEGORIES: Final[frozenset[str]] = frozenset({"Lu", "Ll", "Lt", "Lo", "Nd", "Nl", "No"})

# Calibre punctuation that is spelled several ways for the same thing.
_CALIBRE_MARKS: Final[dict[int, str]] = str.maketrans(
    {
        ",": ".",  # COMMA used as decimal separator: 7,62 is 7.62
        "\u066b": ".",  # ARABIC DECIMAL SEPARATOR
        "\u00d7": "X",  # MULTIPLICATION SIGN: 7.62x39
    }
)


def _is_key_char(char: str) -> bool:
    """Whether a character survives into a key (a letter or a number)."""
    return unicodedata.category(char) in _KEY_CATEGORIES


def _ascii_digit(char: str) -> str:
    """The ASCII digit for any Unicode decimal digit, else the character unchanged."""
    value = unicodedata.decimal(char, None)
    return char if value is None else str(value)


def _fold_serial(text: str) -> str:
    """Upper-cased letters and ASCII digits of a serial, separators and symbols dropped."""
    # Symbols go before NFKC, which would otherwise spell some as letters (NUMERO SIGN -> "No").
    text = "".join(char for char in text if unicodedata.category(char)[0] in "LMN")
    text = unicodedata.normalize("NFKC", text).upper()
    kept = (_ascii_digit(char).translate(_LOOKALIKES) for char in text)
    folded = "".join(char for char in kept if _is_key_char(char))
    # Recompose what dropping marks and modifier letters brought together (Hangul jamo), so
    # that a key is its own key.
    return unicodedata.normalize("NFC", folded)


def serial_key(serial_raw: str | None, serial_status: SerialStatus) -> str | None:
    """The key a serial number is cross-matched on, or None when the serial cannot be keyed."""
    if serial_status not in SERIAL_STATUSES:
        raise ValueError(f"unknown serial_status: {serial_status!r}")
    if serial_status in _UNKEYED_STATUSES or serial_raw is None:
        return None
    key = _fold_serial(serial_raw)
    if not key:
        return None
    if serial_status == SerialStatus.partially_obliterated and len(key) < PARTIAL_MIN_LENGTH:
        return None
    return key


@lru_cache(maxsize=4096)  # makes repeat: a batch of a cache's rifles names a handful
def make_key(make: str | None) -> str | None:
    """The key a make is matched on: upper-cased letters and digits without accents, or None."""
    if make is None:
        return None
    text = unicodedata.normalize("NFKC", make).casefold().upper()
    key = "".join(
        char
        for char in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(char) and _is_key_char(char)
    )
    # Recompose what NFKD split and dropping separators brought together (Hangul syllables).
    return unicodedata.normalize("NFC", key) or None


def calibre_key(calibre: str | None) -> str | None:
    """The key a calibre is matched on: upper-cased, decimal comma as a dot, no spaces, or None."""
    if calibre is None:
        return None
    text = unicodedata.normalize("NFKC", calibre).upper()
    key = "".join(
        _ascii_digit(char).translate(_CALIBRE_MARKS).translate(_LOOKALIKES)
        for char in text
        if not char.isspace() and unicodedata.category(char) not in ("Zs", "Zl", "Zp", "Cf")
    )
    # Recompose marks that dropping spaces or folding letters left next to a base letter.
    return unicodedata.normalize("NFC", key) or None
