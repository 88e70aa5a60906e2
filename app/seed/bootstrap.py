"""The operator agency and its platform administrators: what exists before any principal.

`tracewire create-admin` (and the demo's operator) start here: nobody is logged in yet to
act through the services, so these rows are written directly.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyType, User
from app.authz.principal import Role
from app.core.config import Settings
from app.core.db import Database
from app.core.security import PasswordHashing
from app.core.types import utcnow

OPERATOR_AGENCY = "Tracewire Operations"


async def operator_agency(session: AsyncSession) -> Agency:
    """The operator's own agency (never a recipient or a group member, DESIGN §2)."""
    operator = (await session.exec(select(Agency).where(Agency.name == OPERATOR_AGENCY))).first()
    if operator is None:
        operator = Agency(
            name=OPERATOR_AGENCY, country="XX", type=AgencyType.international, is_focal_point=False
        )
        session.add(operator)
        await session.flush()
    if not operator.is_operator:
        operator.is_operator = True
        session.add(operator)
        await session.flush()
    return operator


async def reset_platform_admin(
    session: AsyncSession,
    hashing: PasswordHashing,
    operator: Agency,
    email: str,
    full_name: str,
    password: str,
) -> tuple[User, bool]:
    """Create a platform administrator in `operator`, or reset one; (user, True if new)."""
    email = email.lower()
    query = select(User).where(User.email == email, col(User.deleted_at).is_(None))
    user = (await session.exec(query)).first()
    created = user is None
    if user is None:
        user = User(
            agency_id=operator.id,
            email=email,
            full_name=full_name,
            role=Role.platform_admin,
            password_hash="",
        )
    elif user.agency_id != operator.id:
        raise ValueError(f"{email} already belongs to another agency")
    else:
        user.token_epoch += 1  # a reset password ends the user's sessions
    user.role = Role.platform_admin
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
            operator = await operator_agency(session)
            _, created = await reset_platform_admin(
                session, hashing, operator, email, full_name, password
            )
        return created
    finally:
        await db.dispose()
