"""The marking -> TLP decision every import path shares (STIX ids, MISP `tlp:` tags)."""

from __future__ import annotations

import pytest
import stix2

from app.interop import stix
from app.sharing.handling import Tlp
from app.sharing.markings import TLP2_MARKING_IDS, UnknownMarking, strictest_tlp, tlp_of_marking


@pytest.mark.parametrize(
    ("token", "tlp"),
    [
        ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", Tlp.clear),
        ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", Tlp.green),
        ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", Tlp.amber),
        ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", Tlp.amber_strict),
        ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", Tlp.red),
        (stix2.TLP_WHITE.id, Tlp.clear),
        (stix2.TLP_GREEN.id, Tlp.green),
        (stix2.TLP_AMBER.id, Tlp.amber),
        (stix2.TLP_RED.id, Tlp.red),
        ("tlp:white", Tlp.clear),
        ("tlp:clear", Tlp.clear),
        ("TLP:GREEN", Tlp.green),
        ("tlp:amber", Tlp.amber),
        ("tlp:amber+strict", Tlp.amber_strict),
        (" tlp:red ", Tlp.red),
        ("tlp:ex:chr", None),
        ('osint:source-type="blog-post"', None),
        ("marking-definition--00000000-0000-4000-8000-000000000000", None),
    ],
)
def test_each_marking_maps_to_its_tlp_2_level(token, tlp):
    assert tlp_of_marking(token) == tlp


def test_the_stix_writer_uses_the_same_table():
    assert stix.TLP2_MARKING_IDS is TLP2_MARKING_IDS
    assert stix.tlp_marking(Tlp.red)["id"] == TLP2_MARKING_IDS[Tlp.red]


def test_the_strictest_of_several_markings_wins():
    assert strictest_tlp([]) is None
    assert strictest_tlp(["tlp:green", stix2.TLP_RED.id, "tlp:amber"]) is Tlp.red
    assert strictest_tlp(["tlp:amber", "tlp:amber+strict"]) is Tlp.amber_strict
    assert strictest_tlp([stix2.TLP_WHITE.id, "tlp:green"]) is Tlp.green


def test_an_unknown_marking_refuses_naming_it():
    with pytest.raises(UnknownMarking) as caught:
        strictest_tlp(["tlp:green", "PAP:RED"], field="tags")
    assert caught.value.errors[0].field == "tags.1"
    assert "PAP:RED" in caught.value.errors[0].message
