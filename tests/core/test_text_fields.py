"""The text fields' check (app/core/schemas.py): no control character but tab, line feed
and carriage return, whatever the code point; the rest in NFC."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from app.core.schemas import Text40

_TEXT = TypeAdapter(Text40)


def test_the_control_check_refuses_exactly_unicodes_control_characters():
    allowed = {"\t", "\n", "\r"}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        control = unicodedata.category(char) == "Cc" and char not in allowed
        if 0xD800 <= code <= 0xDFFF:
            continue  # a lone surrogate never reaches a field (app/core/jsonshape.py)
        try:
            _TEXT.validate_python(f"a{char}b")
        except ValidationError:
            assert control, f"U+{code:04X} refused"
        else:
            assert not control, f"U+{code:04X} let through"


@pytest.mark.parametrize("given", ["Cafe\u0301", "\ufb01le", "x\ty\nz\r"])
def test_text_is_stored_in_nfc(given: str):
    assert _TEXT.validate_python(given) == unicodedata.normalize("NFC", given)
