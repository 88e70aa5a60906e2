"""Field types and base models shared by every domain's schemas."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.core.countries import is_country


def _nfc(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value):
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


def text(max_length: int, min_length: int = 1) -> type[str]:
    """A text field stored as given, normalised to NFC, with length limits."""
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_nfc),
    ]


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
