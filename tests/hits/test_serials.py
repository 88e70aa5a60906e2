"""Serial, make and calibre match keys, on the spellings found in real seizure reports."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.alerts.serials import calibre_key, make_key, serial_key

KEYED_STATUSES = ("present", "restored", "partially_obliterated")

# (raw serial as recorded, expected key) for a serial whose status is "present".
SERIAL_CASES = [
    pytest.param("AB 12-345", "AB12345", id="space-and-hyphen"),
    pytest.param("AB\N{EM DASH}12345", "AB12345", id="em-dash"),
    pytest.param("AB\N{EN DASH}12\N{MINUS SIGN}345", "AB12345", id="en-dash-and-minus-sign"),
    pytest.param("AB\N{NO-BREAK SPACE}12345", "AB12345", id="nbsp"),
    pytest.param("AB\N{NARROW NO-BREAK SPACE}12\N{IDEOGRAPHIC SPACE}345", "AB12345", id="nnbsp"),
    pytest.param("AB\N{ZERO WIDTH SPACE}12345", "AB12345", id="zero-width-space"),
    pytest.param("  ab 12345\n", "AB12345", id="lowercase-and-padding"),
    pytest.param("12.345/B", "12345B", id="dot-and-slash"),
    pytest.param("AB_12:345 #7", "AB123457", id="underscore-colon-hash"),
    pytest.param("(AB) 12'345*", "AB12345", id="brackets-apostrophe-asterisk"),
    pytest.param("\N{NUMERO SIGN} 1234", "1234", id="numero-sign-is-a-symbol"),
    # Cyrillic look-alikes, as typed with a Russian keyboard layout.
    pytest.param(
        "\N{CYRILLIC CAPITAL LETTER A}\N{CYRILLIC CAPITAL LETTER KA} 4712",
        "AK4712",
        id="cyrillic-AK",
    ),
    pytest.param(
        "\N{CYRILLIC SMALL LETTER A}\N{CYRILLIC SMALL LETTER KA}-4712",
        "AK4712",
        id="cyrillic-lowercase-ak",
    ),
    pytest.param(
        "\N{CYRILLIC CAPITAL LETTER ES}\N{CYRILLIC CAPITAL LETTER TE}"
        "\N{CYRILLIC CAPITAL LETTER ER} 0815",
        "CTP0815",
        id="cyrillic-CTP",
    ),
    # Greek look-alikes.
    pytest.param(
        "\N{GREEK CAPITAL LETTER ALPHA}\N{GREEK CAPITAL LETTER BETA} 123",
        "AB123",
        id="greek-AB",
    ),
    pytest.param(
        "\N{GREEK SMALL LETTER OMICRON}\N{GREEK SMALL LETTER RHO}\N{GREEK SMALL LETTER KAPPA}-55",
        "OPK55",
        id="greek-lowercase-opk",
    ),
    # Non-ASCII decimal digits.
    pytest.param(
        "\N{ARABIC-INDIC DIGIT THREE}\N{ARABIC-INDIC DIGIT FOUR}\N{ARABIC-INDIC DIGIT FIVE}"
        "\N{ARABIC-INDIC DIGIT SIX}\N{ARABIC-INDIC DIGIT SEVEN}",
        "34567",
        id="arabic-indic-digits",
    ),
    pytest.param(
        "AK \N{EXTENDED ARABIC-INDIC DIGIT FOUR}\N{EXTENDED ARABIC-INDIC DIGIT SEVEN}"
        "\N{EXTENDED ARABIC-INDIC DIGIT ONE}\N{EXTENDED ARABIC-INDIC DIGIT TWO}",
        "AK4712",
        id="persian-digits",
    ),
    pytest.param(
        "\N{DEVANAGARI DIGIT NINE}\N{DEVANAGARI DIGIT ZERO}\N{DEVANAGARI DIGIT ONE}",
        "901",
        id="devanagari-digits",
    ),
    pytest.param(
        "\N{ARABIC-INDIC DIGIT ONE}\N{ARABIC-INDIC DIGIT TWO}\N{ARABIC TATWEEL}"
        "\N{ARABIC-INDIC DIGIT THREE}",
        "123",
        id="arabic-tatweel-dropped",
    ),
    # Fullwidth forms, as typed with a CJK input method.
    pytest.param(
        "\N{FULLWIDTH DIGIT ONE}\N{FULLWIDTH DIGIT TWO}\N{FULLWIDTH DIGIT THREE}"
        "\N{FULLWIDTH DIGIT FOUR}\N{FULLWIDTH DIGIT FIVE}",
        "12345",
        id="fullwidth-digits",
    ),
    pytest.param(
        "\N{FULLWIDTH LATIN CAPITAL LETTER A}\N{FULLWIDTH LATIN SMALL LETTER B}"
        "\N{FULLWIDTH HYPHEN-MINUS}\N{FULLWIDTH DIGIT SEVEN}\N{FULLWIDTH DIGIT SEVEN}",
        "AB77",
        id="fullwidth-letters-and-hyphen",
    ),
    # Letters that look like no Latin letter are kept, upper-cased.
    pytest.param(
        "\N{CYRILLIC CAPITAL LETTER BE}\N{CYRILLIC CAPITAL LETTER PE} 1234",
        "\N{CYRILLIC CAPITAL LETTER BE}\N{CYRILLIC CAPITAL LETTER PE}1234",
        id="makarov-BP-kept",
    ),
    pytest.param(
        "\N{CYRILLIC SMALL LETTER BE}\N{CYRILLIC SMALL LETTER PE} 1234",
        "\N{CYRILLIC CAPITAL LETTER BE}\N{CYRILLIC CAPITAL LETTER PE}1234",
        id="makarov-lowercase-bp-upper-cased",
    ),
    pytest.param(
        "\N{CYRILLIC CAPITAL LETTER ZHE}\N{CYRILLIC CAPITAL LETTER A}-77",
        "\N{CYRILLIC CAPITAL LETTER ZHE}A77",
        id="cyrillic-mixed-kept-and-folded",
    ),
    pytest.param(
        "\N{ARABIC LETTER ALEF}\N{ARABIC LETTER BEH} 12",
        "\N{ARABIC LETTER ALEF}\N{ARABIC LETTER BEH}12",
        id="arabic-letters-kept",
    ),
    pytest.param(
        "\N{HANGUL CHOSEONG KIYEOK}\N{ARABIC TATWEEL}\N{HANGUL JUNGSEONG A}-1",
        "\N{HANGUL SYLLABLE GA}1",
        id="hangul-jamo-recomposed",
    ),
    pytest.param(
        "\N{CJK UNIFIED IDEOGRAPH-4E2D}-56 \N{CJK UNIFIED IDEOGRAPH-5F0F}",
        "\N{CJK UNIFIED IDEOGRAPH-4E2D}56\N{CJK UNIFIED IDEOGRAPH-5F0F}",
        id="cjk-kept",
    ),
    # Letter O and digit 0 are different characters on the receiver and stay so.
    pytest.param("AO 1234", "AO1234", id="letter-O-stays-O"),
    pytest.param("A0 1234", "A01234", id="digit-0-stays-0"),
    pytest.param("A\N{CYRILLIC CAPITAL LETTER O}1234", "AO1234", id="cyrillic-O-is-letter-O"),
]

# Each look-alike with the Latin letter it folds to; lowercase folds like its capital.
CYRILLIC_LOOKALIKES = [
    ("\N{CYRILLIC CAPITAL LETTER A}", "A"),
    ("\N{CYRILLIC CAPITAL LETTER VE}", "B"),
    ("\N{CYRILLIC CAPITAL LETTER IE}", "E"),
    ("\N{CYRILLIC CAPITAL LETTER KA}", "K"),
    ("\N{CYRILLIC CAPITAL LETTER EM}", "M"),
    ("\N{CYRILLIC CAPITAL LETTER EN}", "H"),
    ("\N{CYRILLIC CAPITAL LETTER O}", "O"),
    ("\N{CYRILLIC CAPITAL LETTER ER}", "P"),
    ("\N{CYRILLIC CAPITAL LETTER ES}", "C"),
    ("\N{CYRILLIC CAPITAL LETTER TE}", "T"),
    ("\N{CYRILLIC CAPITAL LETTER HA}", "X"),
    ("\N{CYRILLIC CAPITAL LETTER U}", "Y"),
    ("\N{CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I}", "I"),
    ("\N{CYRILLIC CAPITAL LETTER JE}", "J"),
    ("\N{CYRILLIC CAPITAL LETTER DZE}", "S"),
    ("\N{CYRILLIC SMALL LETTER A}", "A"),
    ("\N{CYRILLIC SMALL LETTER VE}", "B"),
    ("\N{CYRILLIC SMALL LETTER IE}", "E"),
    ("\N{CYRILLIC SMALL LETTER KA}", "K"),
    ("\N{CYRILLIC SMALL LETTER EM}", "M"),
    ("\N{CYRILLIC SMALL LETTER EN}", "H"),
    ("\N{CYRILLIC SMALL LETTER O}", "O"),
    ("\N{CYRILLIC SMALL LETTER ER}", "P"),
    ("\N{CYRILLIC SMALL LETTER ES}", "C"),
    ("\N{CYRILLIC SMALL LETTER TE}", "T"),
    ("\N{CYRILLIC SMALL LETTER HA}", "X"),
    ("\N{CYRILLIC SMALL LETTER U}", "Y"),
    ("\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}", "I"),
    ("\N{CYRILLIC SMALL LETTER JE}", "J"),
    ("\N{CYRILLIC SMALL LETTER DZE}", "S"),
    ("\N{CYRILLIC CAPITAL LETTER STRAIGHT U}", "Y"),
    ("\N{CYRILLIC LETTER PALOCHKA}", "I"),
]
GREEK_LOOKALIKES = [
    ("\N{GREEK CAPITAL LETTER ALPHA}", "A"),
    ("\N{GREEK CAPITAL LETTER BETA}", "B"),
    ("\N{GREEK CAPITAL LETTER EPSILON}", "E"),
    ("\N{GREEK CAPITAL LETTER ZETA}", "Z"),
    ("\N{GREEK CAPITAL LETTER ETA}", "H"),
    ("\N{GREEK CAPITAL LETTER IOTA}", "I"),
    ("\N{GREEK CAPITAL LETTER KAPPA}", "K"),
    ("\N{GREEK CAPITAL LETTER MU}", "M"),
    ("\N{GREEK CAPITAL LETTER NU}", "N"),
    ("\N{GREEK CAPITAL LETTER OMICRON}", "O"),
    ("\N{GREEK CAPITAL LETTER RHO}", "P"),
    ("\N{GREEK CAPITAL LETTER TAU}", "T"),
    ("\N{GREEK CAPITAL LETTER UPSILON}", "Y"),
    ("\N{GREEK CAPITAL LETTER CHI}", "X"),
    ("\N{GREEK SMALL LETTER ALPHA}", "A"),
    ("\N{GREEK SMALL LETTER IOTA}", "I"),
    ("\N{GREEK SMALL LETTER KAPPA}", "K"),
    ("\N{GREEK SMALL LETTER OMICRON}", "O"),
    ("\N{GREEK SMALL LETTER RHO}", "P"),
    ("\N{GREEK SMALL LETTER CHI}", "X"),
    # Looks like v, but its capital looks like N: the key ignores case, so it folds to N.
    ("\N{GREEK SMALL LETTER NU}", "N"),
]


def _lookalike_params(pairs: list[tuple[str, str]]) -> list[object]:
    return [
        pytest.param(char, latin, id=unicodedata.name(char).lower().replace(" ", "-"))
        for char, latin in pairs
    ]


@pytest.mark.parametrize(("raw", "expected"), SERIAL_CASES)
def test_serial_key(raw: str, expected: str) -> None:
    assert serial_key(raw, "present") == expected


@pytest.mark.parametrize(("char", "latin"), _lookalike_params(CYRILLIC_LOOKALIKES))
def test_cyrillic_lookalike_folds_to_latin(char: str, latin: str) -> None:
    assert serial_key(f"7{char}62-{char}", "present") == f"7{latin}62{latin}"


@pytest.mark.parametrize(("char", "latin"), _lookalike_params(GREEK_LOOKALIKES))
def test_greek_lookalike_folds_to_latin(char: str, latin: str) -> None:
    assert serial_key(f"7{char}62-{char}", "present") == f"7{latin}62{latin}"


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("AK-4712", id="latin"),
        pytest.param("A\N{CYRILLIC CAPITAL LETTER KA}-4712", id="latin-A-cyrillic-K"),
        pytest.param("\N{CYRILLIC CAPITAL LETTER A}K 4712", id="cyrillic-A-latin-K"),
        pytest.param("\N{GREEK CAPITAL LETTER ALPHA}\N{GREEK SMALL LETTER KAPPA}4712", id="greek"),
        pytest.param(
            "ak \N{ARABIC-INDIC DIGIT FOUR}\N{ARABIC-INDIC DIGIT SEVEN}12", id="arabic-digits"
        ),
    ],
)
def test_mixed_script_spellings_match_pure_latin(variant: str) -> None:
    assert serial_key(variant, "present") == serial_key("AK4712", "present") == "AK4712"


def test_letter_o_and_digit_zero_do_not_match() -> None:
    assert serial_key("AO1234", "present") != serial_key("A01234", "present")


@pytest.mark.parametrize("status", ["present", "restored"])
def test_legible_serial_is_keyed(status: str) -> None:
    assert serial_key("ab-12 345", status) == "AB12345"


@pytest.mark.parametrize("status", ["obliterated", "absent"])
@pytest.mark.parametrize("raw", ["AB12345", "AB 12-345 (partly legible?)", "", None])
def test_unreadable_serial_has_no_key_even_with_text(raw: str | None, status: str) -> None:
    assert serial_key(raw, status) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("AB-12", "AB12", id="four-left"),
        pytest.param("..12 3456", "123456", id="six-left"),
        pytest.param("AB1", None, id="three-left"),
        pytest.param("1-2-3", None, id="three-left-after-separators"),
        pytest.param("A??", None, id="one-left"),
        pytest.param("???", None, id="nothing-left"),
    ],
)
def test_partially_obliterated_needs_four_characters(raw: str, expected: str | None) -> None:
    assert serial_key(raw, "partially_obliterated") == expected


@pytest.mark.parametrize("status", KEYED_STATUSES)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param("\N{NO-BREAK SPACE}\t\n", id="nbsp-tab-newline"),
        pytest.param("---", id="hyphens"),
        pytest.param("#/.", id="hash-slash-dot"),
        pytest.param("\N{EM DASH}\N{NUMERO SIGN}", id="em-dash-numero-sign"),
    ],
)
def test_blank_or_symbols_only_has_no_key(raw: str | None, status: str) -> None:
    assert serial_key(raw, status) is None


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="serial_status"):
        serial_key("AB12345", "legible")


@pytest.mark.parametrize(("raw", "expected"), SERIAL_CASES)
def test_serial_key_of_a_key_is_the_key(raw: str, expected: str) -> None:
    key = serial_key(raw, "present")
    assert key == expected
    assert serial_key(key, "present") == key


@example(raw="\N{HANGUL CHOSEONG KIYEOK}\N{ARABIC TATWEEL}\N{HANGUL JUNGSEONG A}", status="present")
@example(raw="\N{GREEK SMALL LETTER IOTA WITH DIALYTIKA AND TONOS}", status="present")
@example(raw="\N{LATIN SMALL LETTER KRA}\N{GREEK SMALL LETTER NU}", status="restored")
@given(raw=st.text(), status=st.sampled_from(KEYED_STATUSES))
def test_serial_key_is_clean_and_idempotent(raw: str, status: str) -> None:
    key = serial_key(raw, status)
    if key is None:
        return
    assert key != ""
    assert not any(char.isspace() for char in key)
    # No lowercase letter that has a capital. A few letters (e.g. LATIN SMALL LETTER KRA)
    # are lowercase with no capital at all: they are kept as they are.
    assert key == key.upper()
    assert serial_key(key, status) == key


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param("Heckler & Koch", "HECKLERKOCH", id="ampersand"),
        pytest.param("HECKLER-KOCH", "HECKLERKOCH", id="hyphen"),
        pytest.param("heckler koch", "HECKLERKOCH", id="lowercase"),
        pytest.param(
            "\N{LATIN CAPITAL LETTER C WITH CARON}esk\N{LATIN SMALL LETTER A WITH ACUTE} zbrojovka",
            "CESKAZBROJOVKA",
            id="ceska",
        ),
        pytest.param("CESKA ZBROJOVKA", "CESKAZBROJOVKA", id="ceska-without-accents"),
        pytest.param(
            "Zastava Oru\N{LATIN SMALL LETTER Z WITH CARON}je", "ZASTAVAORUZJE", id="zastava"
        ),
        pytest.param("Fabrique Nationale d'Herstal", "FABRIQUENATIONALEDHERSTAL", id="apostrophe"),
        pytest.param("SIG Sauer", "SIGSAUER", id="sig-sauer"),
        pytest.param("Walther (Carl Walther GmbH)", "WALTHERCARLWALTHERGMBH", id="brackets"),
        pytest.param(
            "\N{FULLWIDTH LATIN CAPITAL LETTER H}\N{FULLWIDTH LATIN SMALL LETTER K}",
            "HK",
            id="fullwidth",
        ),
        pytest.param("Stra\N{LATIN SMALL LETTER SHARP S}e", "STRASSE", id="sharp-s"),
        pytest.param(
            "\N{HANGUL SYLLABLE DAE}\N{HANGUL SYLLABLE U}",
            "\N{HANGUL SYLLABLE DAE}\N{HANGUL SYLLABLE U}",
            id="hangul-kept-composed",
        ),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("  \t", None, id="blank"),
        pytest.param("& -", None, id="symbols-only"),
    ],
)
def test_make_key(make: str | None, expected: str | None) -> None:
    assert make_key(make) == expected


@pytest.mark.parametrize(
    ("calibre", "expected"),
    [
        pytest.param("7,62 x 39 mm", "7.62X39MM", id="comma-and-spaces"),
        pytest.param("7.62X39MM", "7.62X39MM", id="already-a-key"),
        pytest.param("7.62\N{MULTIPLICATION SIGN}39mm", "7.62X39MM", id="multiplication-sign"),
        pytest.param(
            "7,62\N{CYRILLIC SMALL LETTER HA}39 \N{CYRILLIC SMALL LETTER EM}"
            "\N{CYRILLIC SMALL LETTER EM}",
            "7.62X39MM",
            id="russian-notation",
        ),
        pytest.param("7.62\N{NO-BREAK SPACE}x\N{NO-BREAK SPACE}54R", "7.62X54R", id="nbsp"),
        pytest.param(
            "\N{FULLWIDTH DIGIT NINE} \N{FULLWIDTH LATIN SMALL LETTER M}m", "9MM", id="fullwidth"
        ),
        pytest.param(".308 Win", ".308WIN", id="leading-dot-kept"),
        pytest.param("12 GA", "12GA", id="gauge"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
    ],
)
def test_calibre_key(calibre: str | None, expected: str | None) -> None:
    assert calibre_key(calibre) == expected


def test_calibres_that_differ_keep_different_keys() -> None:
    assert calibre_key("7.62x39") != calibre_key("7.62x54R")
    assert calibre_key(".22 LR") != calibre_key("22 LR")
