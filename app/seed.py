"""Bootstrap data: the first platform administrator, and the demo data set."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, AgencyType, ApiClient, User
from app.agencies.service import CLIENT_SECRET_PREFIX
from app.core.config import Settings
from app.core.db import Database
from app.core.principal import Role, Scope
from app.core.security import PasswordHashing, digest_secret, new_secret
from app.core.types import utcnow

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
            operator = await _agency(
                session, OPERATOR_AGENCY, "XX", AgencyType.international, False
            )
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
            operator = await _agency(
                session, OPERATOR_AGENCY, "XX", AgencyType.international, False
            )
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
