"""Field types and base models shared by every domain's schemas."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.core.countries import is_country

# Unicode's control characters (category Cc: U+0000-U+001F and U+007F-U+009F) but tab,
# line feed and carriage return, found in C (a check per character was a twentieth of a
# batch's CPU).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _nfc(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return unicodedata.normalize("NFC", value)


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def _country_or_international(value: str) -> str:
    if not is_country(value, allow_international=True):
        raise ValueError(
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (or XX for an "
            "international organisation)"
        )
    return value


def _nfc_or_none(value: str | None) -> str | None:
    return None if value is None else _nfc(value)


# For query parameters: the same check and normal form as the body's text fields.
QueryText = AfterValidator(_nfc_or_none)

# Text fields stored as given, normalised to NFC, with length limits: TextN holds 1 to N
# characters, TextNOrEmpty 0 to N. Spelled out so type checkers read them as types.
_NFC = AfterValidator(_nfc)
Text40 = Annotated[str, StringConstraints(min_length=1, max_length=40), _NFC]
Text60 = Annotated[str, StringConstraints(min_length=1, max_length=60), _NFC]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100), _NFC]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200), _NFC]
Text300 = Annotated[str, StringConstraints(min_length=1, max_length=300), _NFC]
Text500 = Annotated[str, StringConstraints(min_length=1, max_length=500), _NFC]
Text2000 = Annotated[str, StringConstraints(min_length=1, max_length=2000), _NFC]
Text4000 = Annotated[str, StringConstraints(min_length=1, max_length=4000), _NFC]
Text8000 = Annotated[str, StringConstraints(min_length=1, max_length=8000), _NFC]
Text50OrEmpty = Annotated[str, StringConstraints(min_length=0, max_length=50), _NFC]
Text500OrEmpty = Annotated[str, StringConstraints(min_length=0, max_length=500), _NFC]
Text2000OrEmpty = Annotated[str, StringConstraints(min_length=0, max_length=2000), _NFC]
Text20000OrEmpty = Annotated[str, StringConstraints(min_length=0, max_length=20000), _NFC]

CountryCode = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$"),
    AfterValidator(_country),
]
AgencyCountryCode = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$"),
    AfterValidator(_country_or_international),
]


class InputModel(BaseModel):
    """A request body: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class OutputModel(BaseModel):
    """An answer body read from table rows."""

    model_config = ConfigDict(from_attributes=True)
