"""The demo data set, written through the services so that every row is audited.

The operator (bootstrapped like `tracewire create-admin`) registers the agencies and
invites each one's first administrator, who sets the demo password with the invitation;
from then on each agency's own administrator manages its users and API client, as the
separation of duties requires (`app/authz/rights.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies import invitations, passwords
from app.agencies import service as agencies
from app.agencies.models import Agency, AgencyStatus, AgencyType, ApiClient, User
from app.agencies.schemas import (
    AgencyCreate,
    AgencyUpdate,
    ApiClientCreate,
    InvitationCreate,
    SetPassword,
    UserCreate,
    UserUpdate,
)
from app.auth import principals
from app.authz.principal import Principal, Role, Scope
from app.core.config import Settings
from app.core.db import Database
from app.core.security import PasswordHashing
from app.seed import bootstrap
from app.seed.demo_alerts import seed_alerts

DEMO_PASSWORD = "tracewire-demo-2026"  # noqa: S105 - printed by `tracewire demo` on purpose
DEMO_DOMAIN = "tracewire.example"
DEMO_MAILBOX = {Role.agency_admin: "admin", Role.focal_point: "focal", Role.reader: "reader"}
DEMO_CLIENT = "Demo partner system"

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
    """What `tracewire demo` prints: the accounts, and the API client's new secret."""

    password: str
    users: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    client_agency: str = ""
    client_id: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class _Seeder:
    """One demo run's session, settings and hashing, and the operator acting in it."""

    session: AsyncSession
    settings: Settings
    hashing: PasswordHashing
    operator: Principal


async def seed_demo(settings: Settings) -> DemoReport:
    """Idempotently load the demo agencies, users, alerts and one API client."""
    db = Database(settings)
    hashing = PasswordHashing(settings)
    report = DemoReport(password=DEMO_PASSWORD)
    try:
        async with db.session() as session, session.begin():
            operator_agency = await bootstrap.operator_agency(session)
            email = f"operator@{DEMO_DOMAIN}"
            operator, _ = await bootstrap.reset_platform_admin(
                session, hashing, operator_agency, email, "Demo Operator", DEMO_PASSWORD
            )
            report.users[operator_agency.name] = [(email, Role.platform_admin.value)]
            seeder = _Seeder(session, settings, hashing, _acting_as(operator))
            admin: dict[str, Principal] = {}
            focal: dict[str, Principal] = {}
            first: Agency | None = None
            for name, country, type_, is_focal, prefix in DEMO_AGENCIES:
                data = AgencyCreate(name=name, country=country, type=type_, is_focal_point=is_focal)
                agency = await _agency(seeder, data)
                first = first or agency
                listed = report.users.setdefault(agency.name, [])
                for role in (Role.agency_admin, Role.focal_point, Role.reader):
                    email = f"{DEMO_MAILBOX[role]}@{prefix}.{DEMO_DOMAIN}"
                    label = f"{role.value.replace('_', ' ').title()} ({country})"
                    if role is Role.agency_admin:
                        admin[prefix] = _acting_as(await _admin(seeder, agency, email, label))
                    else:
                        user = await _user(seeder, admin[prefix], agency, email, role, label)
                        if role is Role.focal_point:
                            focal[prefix] = _acting_as(user)
                    listed.append((email, role.value))
            assert first is not None
            await seed_alerts(session, focal, admin)
            report.client_agency = first.name
            client, secret = await _demo_client(seeder, admin[DEMO_AGENCIES[0][4]], first)
            report.client_id, report.client_secret = str(client.id), secret
        return report
    finally:
        await db.dispose()


def _acting_as(user: User) -> Principal:
    """The principal of a demo user, as if they had logged in."""
    seeded = "demo-seed"  # not a token: marks what the seed did
    return principals.user_principal(user, token_id=seeded, session_id=None)


async def _agency(seeder: _Seeder, data: AgencyCreate) -> Agency:
    """A demo agency, registered by the operator if missing, reactivated if suspended."""
    session, operator = seeder.session, seeder.operator
    agency = (await session.exec(select(Agency).where(Agency.name == data.name))).first()
    if agency is None:
        return await agencies.create_agency(session, operator, data)
    if agency.status != AgencyStatus.active:
        update = AgencyUpdate(status=AgencyStatus.active)
        agency = await agencies.update_agency(session, operator, agency.id, update)
    return agency


async def _existing(session: AsyncSession, agency: Agency, email: str) -> User | None:
    """The live demo account with this address, if any; refused if another agency's."""
    query = select(User).where(User.email == email, col(User.deleted_at).is_(None))
    user = (await session.exec(query)).first()
    if user is not None and user.agency_id != agency.id:
        raise ValueError(f"{email} already belongs to another agency")
    return user


async def _admin(seeder: _Seeder, agency: Agency, email: str, label: str) -> User:
    """The agency's administrator: invited by the operator, then their own password reset."""
    session, hashing = seeder.session, seeder.hashing
    user = await _existing(session, agency, email)
    if user is None:
        invited = InvitationCreate(email=email, full_name=label)
        _, token, _ = await invitations.invite_first_admin(
            session,
            seeder.operator,
            agency.id,
            invited,
            hashing=hashing,
            ttl_seconds=seeder.settings.invitation_ttl_seconds,
        )
        chosen = SetPassword(token=token, password=DEMO_PASSWORD)
        return await invitations.set_password(session, chosen, hashing=hashing)
    # An administrator may not change their own role, so the role is left as it is.
    return await _reset(seeder, _acting_as(user), user, UserUpdate(is_active=True))


async def _user(
    seeder: _Seeder, admin: Principal, agency: Agency, email: str, role: Role, label: str
) -> User:
    """A focal point or reader, created (or reset) by the agency's administrator."""
    session, hashing = seeder.session, seeder.hashing
    user = await _existing(session, agency, email)
    if user is None:
        new = UserCreate(email=email, full_name=label, role=role, password=DEMO_PASSWORD)
        return await agencies.create_user(session, admin, agency.id, new, hashing=hashing)
    return await _reset(seeder, admin, user, UserUpdate(role=role, is_active=True))


async def _reset(seeder: _Seeder, admin: Principal, user: User, update: UserUpdate) -> User:
    """An existing demo account made usable again, its password the demo one: no
    administrator sets a password, so the admin issues a reset link and the seed uses it."""
    session, hashing = seeder.session, seeder.hashing
    await agencies.update_user(session, admin, user.id, update)
    _, token, _ = await passwords.issue_password_reset(
        session,
        admin,
        user.id,
        hashing=hashing,
        ttl_seconds=seeder.settings.invitation_ttl_seconds,
    )
    chosen = SetPassword(token=token, password=DEMO_PASSWORD)
    return await invitations.set_password(session, chosen, hashing=hashing)


async def _demo_client(seeder: _Seeder, admin: Principal, agency: Agency) -> tuple[ApiClient, str]:
    """The demo API client, registered by the agency's administrator; a new secret each run."""
    query = select(ApiClient).where(
        ApiClient.agency_id == agency.id,
        ApiClient.name == DEMO_CLIENT,
        col(ApiClient.revoked_at).is_(None),
    )
    client = (await seeder.session.exec(query)).first()
    if client is None:
        data = ApiClientCreate(name=DEMO_CLIENT, scopes=[Scope.alerts_read, Scope.alerts_write])
        return await agencies.create_client(seeder.session, admin, agency.id, data)
    return await agencies.rotate_client_secret(seeder.session, admin, client.id)
