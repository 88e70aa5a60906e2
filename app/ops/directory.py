"""The command line's view of agencies and users: the operator at the host's shell, who
already holds the database, names an agency by id, name or country."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.core.errors import Conflict, NotFound


async def list_agencies(session: AsyncSession) -> Sequence[Agency]:
    """Every agency, by country then name."""
    query = select(Agency).order_by(col(Agency.country), col(Agency.name))
    return (await session.exec(query)).all()


async def find_agency(session: AsyncSession, reference: str) -> Agency:
    """The one agency `reference` names: its id, its name (any case) or its country code."""
    text = reference.strip()
    try:
        agency = await session.get(Agency, uuid.UUID(text))
    except ValueError:
        agency = None
    else:
        if agency is None:
            raise NotFound(f"No agency with id {text}.")
        return agency
    exact = (await session.exec(select(Agency).where(Agency.name == text))).first()
    if exact is not None:
        return exact
    # Then any case (SQLite's lower() folds ASCII only: exact names always work).
    by_name = select(Agency).where(func.lower(Agency.name) == text.lower())
    named = (await session.exec(by_name)).all()
    if len(named) == 1:
        return named[0]
    if len(text) == 2 and text.isalpha():
        in_country = await session.exec(
            select(Agency).where(Agency.country == text.upper()).order_by(col(Agency.name))
        )
        found = in_country.all()
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(a.name for a in found)
            raise Conflict(
                f"{len(found)} agencies in {text.upper()} ({names}): give the name or the id."
            )
    raise NotFound(f"No agency with the id, name or country {text!r}.")


async def list_users(session: AsyncSession, agency_id: uuid.UUID) -> Sequence[User]:
    """The live users of one agency, by email."""
    query = (
        select(User)
        .where(User.agency_id == agency_id, col(User.deleted_at).is_(None))
        .order_by(col(User.email))
    )
    return (await session.exec(query)).all()
