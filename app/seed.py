"""Bootstrap data: the first platform administrator, and the demo data set."""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, AgencyType, ApiClient, User
from app.agencies.service import CLIENT_SECRET_PREFIX
from app.alerts.schemas import AlertCreate
from app.core.config import Settings
from app.core.db import Database
from app.core.principal import ROLE_SCOPES, Principal, Role, Scope
from app.core.security import PasswordHashing, digest_secret, new_secret
from app.core.types import utcnow
from app.sharing.models import SharingGroup
from app.traces import service as traces
from app.traces.models import TraceOutcome
from app.traces.schemas import Findings, TraceRespond

OPERATOR_AGENCY = "Tracewire Operations"
DEMO_PASSWORD = "tracewire-demo-2026"  # noqa: S105 - printed by `tracewire demo` on purpose
DEMO_DOMAIN = "tracewire.example"
DEMO_MAILBOX = {Role.agency_admin: "admin", Role.focal_point: "focal", Role.reader: "reader"}

# (name, country, type, is_focal_point, mail prefix)
DEMO_AGENCIES: list[tuple[str, str, AgencyType, bool, str]] = [
    ("Kenya National Focal Point on SALW (demo)", "KE", AgencyType.ministry, True, "ke"),
    ("Colombia National Police Firearms Unit (demo)", "CO", AgencyType.police, True, "co"),
    ("German Customs Investigation Bureau (demo)", "DE", AgencyType.customs, False, "de"),
    ("Philippine National Police Firearms Office (demo)", "PH", AgencyType.police, True, "ph"),
    ("Jordan Armed Forces Ordnance Directorate (demo)", "JO", AgencyType.military, False, "jo"),
    ("Global Firearms Programme (demo)", "XX", AgencyType.international, True, "intl"),
]


@dataclass
class DemoReport:
    password: str
    users: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    client_agency: str = ""
    client_id: str = ""
    client_secret: str = ""


async def _agency(
    session: AsyncSession, name: str, country: str, type_: AgencyType, focal: bool
) -> Agency:
    agency = (await session.exec(select(Agency).where(Agency.name == name))).first()
    if agency is None:
        agency = Agency(name=name, country=country, type=type_, is_focal_point=focal)
        session.add(agency)
        await session.flush()
    return agency


async def _operator_agency(session: AsyncSession) -> Agency:
    """The operator's own agency (never a recipient or a group member, DESIGN §2)."""
    operator = await _agency(session, OPERATOR_AGENCY, "XX", AgencyType.international, False)
    if not operator.is_operator:
        operator.is_operator = True
        session.add(operator)
        await session.flush()
    return operator


async def _user(
    session: AsyncSession,
    hashing: PasswordHashing,
    agency: Agency,
    email: str,
    role: Role,
    full_name: str,
    password: str,
) -> tuple[User, bool]:
    email = email.lower()
    query = select(User).where(User.email == email, col(User.deleted_at).is_(None))
    user = (await session.exec(query)).first()
    created = user is None
    if user is None:
        user = User(
            agency_id=agency.id, email=email, full_name=full_name, role=role, password_hash=""
        )
    elif user.agency_id != agency.id:
        raise ValueError(f"{email} already belongs to another agency")
    else:
        user.token_epoch += 1  # a reset password ends the user's sessions
    user.role = role
    user.is_active = True
    user.password_hash = hashing.hash(password)
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    return user, created


async def create_platform_admin(
    settings: Settings, email: str, password: str, full_name: str
) -> bool:
    """Create (or reset) a platform administrator in the operator agency; True if new."""
    if len(password) < settings.password_min_length:
        raise ValueError(f"the password must be at least {settings.password_min_length} characters")
    db = Database(settings)
    hashing = PasswordHashing(settings)
    try:
        async with db.session() as session, session.begin():
            operator = await _operator_agency(session)
            _, created = await _user(
                session, hashing, operator, email, Role.platform_admin, full_name, password
            )
        return created
    finally:
        await db.dispose()


async def seed_demo(settings: Settings) -> DemoReport:
    """Idempotently load the demo agencies, users and one API client."""
    db = Database(settings)
    hashing = PasswordHashing(settings)
    report = DemoReport(password=DEMO_PASSWORD)
    try:
        async with db.session() as session, session.begin():
            operator = await _operator_agency(session)
            email = f"operator@{DEMO_DOMAIN}"
            await _user(
                session,
                hashing,
                operator,
                email,
                Role.platform_admin,
                "Demo Operator",
                DEMO_PASSWORD,
            )
            report.users[operator.name] = [(email, Role.platform_admin.value)]
            first: Agency | None = None
            for name, country, type_, focal, prefix in DEMO_AGENCIES:
                agency = await _agency(session, name, country, type_, focal)
                if agency.status != AgencyStatus.active:
                    agency.status = AgencyStatus.active
                    session.add(agency)
                first = first or agency
                listed = report.users.setdefault(agency.name, [])
                for role in (Role.agency_admin, Role.focal_point, Role.reader):
                    email = f"{DEMO_MAILBOX[role]}@{prefix}.{DEMO_DOMAIN}"
                    label = f"{role.value.replace('_', ' ').title()} ({country})"
                    await _user(session, hashing, agency, email, role, label, DEMO_PASSWORD)
                    listed.append((email, role.value))
            assert first is not None
            await _demo_alerts(session)
            report.client_agency = first.name
            client, secret = await _demo_client(session, first)
            report.client_id, report.client_secret = str(client.id), secret
        return report
    finally:
        await db.dispose()


async def _demo_client(session: AsyncSession, agency: Agency) -> tuple[ApiClient, str]:
    name = "Demo partner system"
    query = select(ApiClient).where(
        ApiClient.agency_id == agency.id,
        ApiClient.name == name,
        col(ApiClient.revoked_at).is_(None),
    )
    client = (await session.exec(query)).first()
    secret = new_secret(CLIENT_SECRET_PREFIX)
    if client is None:
        client = ApiClient(agency_id=agency.id, name=name, secret_hash="", secret_hint="")
    client.scopes = f"{Scope.alerts_read.value} {Scope.alerts_write.value}"
    client.secret_hash = digest_secret(secret)
    client.secret_hint = secret[:8]
    client.secret_rotated_at = utcnow()
    session.add(client)
    await session.flush()
    return client, secret


def _focal(agencies: dict[str, Agency], users: dict[str, User], prefix: str) -> Principal:
    user = users[prefix]
    return Principal(
        kind="user",
        id=user.id,
        agency_id=agencies[prefix].id,
        role=Role.focal_point,
        scopes=ROLE_SCOPES[Role.focal_point],
        name=user.email,
        token_id="demo-seed",  # noqa: S106 - not a token: marks seeded rows
    )


async def _demo_alerts(session: AsyncSession) -> None:
    """Alerts of all three kinds under varied handling, posted through the alert service."""
    from app.alerts import service as alerts
    from app.alerts.models import Alert
    from app.sharing import service as sharing
    from app.sharing.schemas import SharingGroupCreate

    agencies: dict[str, Agency] = {}
    users: dict[str, User] = {}
    for name, *_rest, prefix in DEMO_AGENCIES:
        agencies[prefix] = (await session.exec(select(Agency).where(Agency.name == name))).one()
        email = f"{DEMO_MAILBOX[Role.focal_point]}@{prefix}.{DEMO_DOMAIN}"
        users[prefix] = (await session.exec(select(User).where(User.email == email))).one()
    done = set((await session.exec(select(Alert.title))).all())
    ids = {p: str(a.id) for p, a in agencies.items()}

    admin = dataclasses.replace(_focal(agencies, users, "co"), role=Role.agency_admin)
    group_name = "Andean-European firearms desk (demo)"
    group = (
        await session.exec(select(SharingGroup).where(SharingGroup.name == group_name))
    ).first()
    if group is None:
        group = await sharing.create_group(
            session,
            admin,
            SharingGroupCreate(name=group_name, members=[agencies["de"].id, agencies["ph"].id]),
        )

    for prefix, body in _demo_alert_bodies(ids, str(group.id)):
        if body["title"] in done:
            continue
        data = TypeAdapter(AlertCreate).validate_python(body)
        await alerts.create_alert(session, _focal(agencies, users, prefix), data)

    # One trace request in each state of the workflow, walked by the two parties.
    for requester, addressee, state, steps in DEMO_TRACES:
        title = f"Trace request ({state}): rifle {requester.upper()}-{addressee.upper()}"
        if title in done:
            continue
        body = _trace_body(title, requester, ids[addressee])
        alert = await alerts.create_alert(
            session,
            _focal(agencies, users, requester),
            TypeAdapter(AlertCreate).validate_python(body),
        )
        for action in steps:
            side = addressee if action in ("acknowledge", "request_info", "respond") else requester
            if action == "withdraw":
                await alerts.withdraw_trace_request(
                    session, _focal(agencies, users, side), alert.id, DEMO_TEXT[action]
                )
                continue
            await traces.act(
                session,
                _focal(agencies, users, side),
                alert.id,
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
