"""The demo's alerts, sharing group and trace requests, posted through their services."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from pydantic import TypeAdapter
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import service as alerts
from app.alerts.models import Alert
from app.alerts.schemas import AlertCreate
from app.authz.principal import Principal
from app.sharing import groups as sharing_groups
from app.sharing.models import SharingGroup
from app.sharing.schemas import SharingGroupCreate
from app.traces import workflow as traces
from app.traces.models import TraceOutcome
from app.traces.schemas import Findings, TraceRespond

GROUP_NAME = "Andean-European firearms desk (demo)"


async def seed_alerts(
    session: AsyncSession, focal: dict[str, Principal], admin: dict[str, Principal]
) -> None:
    """Alerts of all three kinds under varied handling, each posted by its agency's focal
    point; the Colombian administrator owns the sharing group (keyed by mail prefix)."""
    done = set((await session.exec(select(Alert.title))).all())
    ids = {prefix: str(p.agency_id) for prefix, p in focal.items()}

    group = (
        await session.exec(select(SharingGroup).where(SharingGroup.name == GROUP_NAME))
    ).first()
    if group is None:
        members = [focal["de"].agency_id, focal["ph"].agency_id]
        group = await sharing_groups.create_group(
            session, admin["co"], SharingGroupCreate(name=GROUP_NAME, members=members)
        )

    for prefix, body in _demo_alert_bodies(ids, str(group.id)):
        if body["title"] in done:
            continue
        data = TypeAdapter(AlertCreate).validate_python(body)
        await alerts.create_alert(session, focal[prefix], data)

    # One trace request in each state of the workflow, walked by the two parties.
    for requester, addressee, state, steps in DEMO_TRACES:
        title = f"Trace request ({state}): rifle {requester.upper()}-{addressee.upper()}"
        if title in done:
            continue
        body = _trace_body(title, requester, ids[addressee])
        alert = await alerts.create_alert(
            session, focal[requester], TypeAdapter(AlertCreate).validate_python(body)
        )
        await _walk(session, focal, alert.id, requester, addressee, steps)


async def _walk(
    session: AsyncSession,
    focal: dict[str, Principal],
    alert_id: uuid.UUID,
    requester: str,
    addressee: str,
    steps: list[str],
) -> None:
    """Take a trace request through `steps`, each by the party whose move it is."""
    for action in steps:
        side = addressee if action in ("acknowledge", "request_info", "respond") else requester
        if action == "withdraw":
            await traces.withdraw_trace_request(session, focal[side], alert_id, DEMO_TEXT[action])
            continue
        await traces.act(
            session,
            focal[side],
            alert_id,
            action,
            text=DEMO_TEXT.get(action),
            response=DEMO_RESPONSE if action == "respond" else None,
        )


DEMO_TRACES: list[tuple[str, str, str, list[str]]] = [
    ("co", "de", "acknowledged", ["acknowledge"]),
    ("ph", "ke", "info_requested", ["acknowledge", "request_info"]),
    ("ke", "co", "responded", ["acknowledge", "request_info", "provide_info", "respond"]),
    ("de", "jo", "closed", ["acknowledge", "respond", "close"]),
    ("intl", "ph", "withdrawn", ["withdraw"]),
    ("jo", "intl", "submitted", []),
]
DEMO_TEXT = {
    "request_info": "Please send photographs of the receiver markings and any import stamp.",
    "provide_info": "Photographs attached to case file 2026/114; no import stamp visible.",
    "withdraw": "The item was traced through a bilateral channel.",
}
DEMO_RESPONSE = TraceRespond(
    outcome=TraceOutcome.traced,
    findings=Findings(
        manufacturer="Zastava Arms",
        exporter="Yugoimport SDPR",
        last_legal_holder="National police armoury, Eldoret",
        assessed_diversion_point="Theft from the armoury, reported in 2019.",
    ),
    use_restrictions="For the criminal investigation only; not for onward sharing.",
)


def _demo_serial(title: str) -> str:
    return f"M70-{zlib.crc32(title.encode()) % 99999:05d}"


def _trace_body(title: str, country_prefix: str, addressee_id: str) -> dict[str, Any]:
    country = {"intl": "XX"}.get(country_prefix, country_prefix.upper())
    return {
        "kind": "trace_request",
        "publish": True,
        "title": title,
        "country": "KE" if country == "XX" else country,
        "items": [
            {
                "category": "small_arm",
                "make": "Zastava",
                "model": "M70",
                "calibre": "7.62x39mm",
                "serial_raw": _demo_serial(title),
            }
        ],
        "details": {
            "addressed_to": addressee_id,
            "circumstances": "Recovered during a search of a vehicle.",
            "illicit_reason": "Possession without a licence; serial not in the national registry.",
            "intended_use": "Criminal investigation.",
        },
        "handling": {"tlp": "amber", "audience": "recipients"},
    }


def _demo_alert_bodies(ids: dict[str, str], group_id: str) -> list[tuple[str, dict[str, Any]]]:
    akm = {
        "category": "small_arm",
        "make": "Kalashnikov Concern",
        "model": "AKM",
        "calibre": "7.62x39mm",
        "type": "assault rifle",
        "country_of_manufacture": "RU",
        "serial_raw": "\u0410\u041a 47-1234",  # Cyrillic A and K, as stamped
        "markings": [{"text": "\u0410\u041a", "script": "Cyrl", "transliteration": "AK"}],
    }
    return [
        (
            "ke",
            {
                "kind": "seized_weapon",
                "publish": True,
                "title": "Two rifles seized at the Busia border crossing",
                "summary": "Concealed in a lorry carrying maize; driver arrested.",
                "country": "KE",
                "occurred_at": "2026-11-20T08:30:00Z",
                "location": {"text": "Busia one-stop border post", "lat": 0.4608, "lon": 34.1115},
                "tags": ["border", "rifles"],
                "items": [
                    akm,
                    {
                        "category": "small_arm",
                        "make": "Zastava",
                        "model": "M70",
                        "calibre": "7.62x39mm",
                        "serial_raw": "M70-99812",
                    },
                ],
                "details": {
                    "seizure_place": "Busia",
                    "illicit_basis": ["illegal_under_national_law"],
                },
                "handling": {"tlp": "green", "audience": "community"},
            },
        ),
        (
            "co",
            {
                "kind": "seized_weapon",
                "publish": True,
                "title": "Pistols with obliterated serials recovered in Cali",
                "summary": "Four pistols, serials ground off; sent for restoration.",
                "country": "CO",
                "occurred_at": "2026-10-02T17:00:00Z",
                "tags": ["obliterated"],
                "items": [
                    {
                        "category": "small_arm",
                        "make": "Glock",
                        "model": "17",
                        "calibre": "9mm",
                        "serial_status": "obliterated",
                        "quantity": 4,
                    }
                ],
                "handling": {
                    "tlp": "amber",
                    "audience": "recipients",
                    "recipient_groups": [group_id],
                },
            },
        ),
        (
            "ke",
            {
                "kind": "trace_request",
                "publish": True,
                "title": "Trace request: AKM rifle from the Busia seizure",
                "country": "KE",
                "items": [akm],
                "details": {
                    "addressed_to": ids["de"],
                    "priority": "routine",
                    "circumstances": "Seized from a lorry at the Busia border post.",
                    "illicit_reason": "Unlicensed possession; no import record.",
                    "intended_use": "Criminal investigation and prosecution.",
                },
                "handling": {"tlp": "amber", "audience": "recipients"},
            },
        ),
        (
            "ph",
            {
                "kind": "suspicious_procurement",
                "publish": True,
                "title": "Attempted purchase of drone flight controllers by a shell company",
                "summary": "Order for 40 flight controllers, cash payment offered, vague end use.",
                "country": "PH",
                "tags": ["uas"],
                "items": [
                    {
                        "category": "uas_component",
                        "make": "Generic",
                        "model": "F7 flight controller",
                        "quantity": 40,
                    }
                ],
                "details": {
                    "state": "attempted",
                    "parties": [
                        {"role": "buyer", "name": "Blue Harbour Trading Ltd", "country": "PH"},
                        {"role": "forwarder", "name": "Swift Cargo Services", "country": "MY"},
                    ],
                    "goods": [
                        {
                            "description": "Drone flight controllers",
                            "hs_code": "8807.30",
                            "quantity": 40,
                            "unit": "pieces",
                        }
                    ],
                    "indicators": [
                        "cash payment",
                        "end use unclear",
                        "freight forwarder as consignee",
                    ],
                },
                "handling": {
                    "tlp": "red",
                    "audience": "recipients",
                    "recipient_agencies": [ids["jo"], ids["intl"]],
                },
            },
        ),
        (
            "intl",
            {
                "kind": "suspicious_procurement",
                "publish": True,
                "title": "Advisory: detonator orders routed through transit hubs",
                "summary": "Pattern of small detonator orders split across several buyers.",
                "country": "AE",
                "tags": ["ied", "advisory"],
                "details": {"state": "enquiry", "indicators": ["split orders", "unusual route"]},
                "handling": {"tlp": "clear", "audience": "community"},
            },
        ),
        (
            "jo",
            {
                "kind": "seized_weapon",
                "publish": True,
                "title": "Rifle recovered from an arms cache near Mafraq",
                "summary": "One AKM among older rifles; its serial matches a Kenyan seizure.",
                "country": "JO",
                "tags": ["cache"],
                "items": [{**akm, "serial_raw": "AK-471234"}],
                "handling": {"tlp": "green", "audience": "community"},
            },
        ),
        (
            "de",
            {
                "kind": "seized_weapon",
                "publish": False,
                "title": "Draft: parcel with pistol parts intercepted in Leipzig",
                "country": "DE",
                "items": [{"category": "weapon_part", "make": "Glock", "type": "slide"}],
                "handling": {
                    "tlp": "amber",
                    "audience": "recipients",
                    "recipient_agencies": [ids["co"]],
                },
            },
        ),
    ]
