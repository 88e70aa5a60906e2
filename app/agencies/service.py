"""Agencies, users and API clients: create, read, update, delete under the admin rights."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.agencies.schemas import (
    AgencyCreate,
    AgencyUpdate,
    ApiClientCreate,
    UserCreate,
    UserUpdate,
)
from app.audit import service as audit
from app.authz import rights
from app.authz.principal import ActorKind, Principal
from app.core import patch
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import keyset_page
from app.core.security import PasswordHashing, digest_secret, new_secret
from app.core.types import utcnow

CLIENT_SECRET_PREFIX = "tws_"  # noqa: S105 - a prefix, not a secret


async def record_on_agency(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    action: str,
    *,
    object_type: str,
    object_id: object,
    details: dict[str, object] | None = None,
) -> None:
    """Audit an admin action on `agency_id`: in the actor's trail and, when the actor is
    an operator acting on another agency, in that agency's trail as well (DESIGN §2)."""
    await audit.record(
        session, principal, action, object_type=object_type, object_id=object_id, details=details
    )
    if agency_id != principal.agency_id:
        await audit.record(
            session,
            principal,
            action,
            object_type=object_type,
            object_id=object_id,
            details=details,
            agency_id=agency_id,
        )


# --- agencies ---------------------------------------------------------------------------


async def create_agency(session: AsyncSession, principal: Principal, data: AgencyCreate) -> Agency:
    """Register an agency (operator staff only)."""
    rights.require_platform_admin(principal)
    await _ensure_agency_name_free(session, data.name)
    agency = Agency(**data.model_dump())
    session.add(agency)
    await session.flush()
    await record_on_agency(
        session, principal, agency.id, "agency.create", object_type="agency", object_id=agency.id
    )
    return agency


async def list_agencies(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None = None,
    country: str | None = None,
    status: AgencyStatus | None = None,
) -> tuple[Sequence[Agency], str | None]:
    """The agency directory every principal needs to address alerts."""
    query = select(Agency)
    if country:
        query = query.where(Agency.country == country)
    if status:
        query = query.where(Agency.status == status)
    return await keyset_page(session, query, Agency, limit=limit, cursor=cursor)


async def get_agency(session: AsyncSession, agency_id: uuid.UUID) -> Agency:
    """One agency of the directory, or 404."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("No such agency.")
    return agency


async def update_agency(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID, data: AgencyUpdate
) -> Agency:
    """Change an agency: register entry and status (operator staff), contact (its admins)."""
    # Who may change which fields is decided on the fields named, before the agency is
    # loaded and before any value is checked: 403, then 404, then 422.
    rights.require_agency_editor(principal, agency_id, set(data.model_fields_set))
    agency = await get_agency(session, agency_id)
    changes = patch.changes_of(
        data, not_null=("name", "country", "type", "is_focal_point", "status")
    )
    if changes.get("status") == AgencyStatus.suspended and agency.id == principal.agency_id:
        raise Conflict("An administrator cannot suspend their own agency.")
    if "name" in changes and changes["name"] != agency.name:
        await _ensure_agency_name_free(session, changes["name"])
    patch.apply_changes(agency, changes)
    agency.updated_at = utcnow()
    session.add(agency)
    await session.flush()
    await record_on_agency(
        session,
        principal,
        agency.id,
        "agency.update",
        object_type="agency",
        object_id=agency.id,
        details={"fields": sorted(changes)}
        | ({"status": agency.status} if "status" in changes else {}),
    )
    return agency


async def _ensure_agency_name_free(session: AsyncSession, name: str) -> None:
    taken = await session.exec(select(Agency.id).where(Agency.name == name))
    if taken.first() is not None:
        raise Conflict(f"An agency named {name!r} already exists.")


# --- users ------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    data: UserCreate,
    *,
    hashing: PasswordHashing,
) -> User:
    """Add a user to an agency the principal manages."""
    rights.require_agency_manager(principal, agency_id)
    rights.require_role_grant(principal, data.role)
    await get_agency(session, agency_id)
    _check_password(data.password, hashing)
    await ensure_email_free(session, data.email)
    user = User(
        agency_id=agency_id,
        email=data.email,
        full_name=data.full_name,
        role=data.role,
        password_hash=hashing.hash(data.password),
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        principal,
        "user.create",
        object_type="user",
        object_id=user.id,
        details={"role": user.role, "agency_id": str(agency_id)},
    )
    return user


async def list_users(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[Sequence[User], str | None]:
    """The live users of an agency the principal manages (operators: of any agency)."""
    overseeing = rights.require_agency_overseer(principal, agency_id)
    await get_agency(session, agency_id)
    query = select(User).where(User.agency_id == agency_id, col(User.deleted_at).is_(None))
    page = await keyset_page(session, query, User, limit=limit, cursor=cursor)
    if overseeing:
        await record_on_agency(
            session, principal, agency_id, "user.list", object_type="agency", object_id=agency_id
        )
    return page


async def _live_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    rights.require_admin(principal)
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such user.")
    return user


async def get_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    """A live user the principal manages (operators: of any agency, audited there), or 403/404."""
    user = await _live_user(session, principal, user_id)
    if rights.require_agency_overseer(principal, user.agency_id, missing="No such user."):
        await record_on_agency(
            session, principal, user.agency_id, "user.read", object_type="user", object_id=user.id
        )
    return user


async def managed_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    """A live user the principal may change (its own agency's admins), or 403/404."""
    user = await _live_user(session, principal, user_id)
    rights.require_agency_manager(principal, user.agency_id, missing="No such user.")
    rights.require_role_grant(principal, user.role)
    return user


async def update_user(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, data: UserUpdate
) -> User:
    """Change a user's name, role or active flag; a new role ends every session and token
    of the user at once (a token or console page opened under the old role stops)."""
    user = await managed_user(session, principal, user_id)
    changes = patch.changes_of(data, not_null=("full_name", "role", "is_active"))
    if "role" in changes:
        rights.require_role_grant(principal, changes["role"])
        if user.id == principal.id and changes["role"] != user.role:
            raise Conflict("Administrators cannot change their own role.")
        if changes["role"] != user.role:
            user.token_epoch += 1
    if changes.get("is_active") is False and user.id == principal.id:
        raise Conflict("Administrators cannot deactivate themselves.")
    patch.apply_changes(user, changes)
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        principal,
        "user.update",
        object_type="user",
        object_id=user.id,
        details={"fields": sorted(changes)} | ({"role": user.role} if "role" in changes else {}),
    )
    return user


async def delete_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> None:
    """Remove a user: the account is closed and its sessions end; its records stay."""
    user = await managed_user(session, principal, user_id)
    if user.id == principal.id:
        raise Conflict("Administrators cannot delete themselves.")
    user.deleted_at = utcnow()
    user.is_active = False
    user.updated_at = user.deleted_at
    session.add(user)
    await session.flush()
    await audit.record(session, principal, "user.delete", object_type="user", object_id=user.id)


def _check_password(password: str, hashing: PasswordHashing) -> None:
    if len(password) < hashing.min_length:
        raise InvalidInput.on("password", f"must be at least {hashing.min_length} characters long")


async def ensure_email_free(session: AsyncSession, email: str) -> None:
    """409 when a live account already uses `email`."""
    query = select(User.id).where(User.email == email, col(User.deleted_at).is_(None))
    if (await session.exec(query)).first() is not None:
        raise Conflict("A user with this email address already exists.")


# --- API clients ------------------------------------------------------------------------


async def create_client(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID, data: ApiClientCreate
) -> tuple[ApiClient, str]:
    """Register a partner system; its secret is returned once and stored as a digest."""
    rights.require_agency_manager(principal, agency_id)
    await get_agency(session, agency_id)
    secret = new_secret(CLIENT_SECRET_PREFIX)
    client = ApiClient(
        agency_id=agency_id,
        name=data.name,
        scopes=" ".join(sorted({s.value for s in data.scopes})),
        secret_hash=digest_secret(secret),
        secret_hint=secret[:8],
        created_by=principal.id if principal.kind == ActorKind.user else None,
    )
    session.add(client)
    await session.flush()
    await audit.record(
        session,
        principal,
        "client.create",
        object_type="api_client",
        object_id=client.id,
        details={"scopes": client.scopes},
    )
    return client, secret


async def list_clients(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[Sequence[ApiClient], str | None]:
    """The live API clients of an agency the principal manages (operators: of any agency)."""
    overseeing = rights.require_agency_overseer(principal, agency_id)
    await get_agency(session, agency_id)
    query = select(ApiClient).where(
        ApiClient.agency_id == agency_id, col(ApiClient.revoked_at).is_(None)
    )
    page = await keyset_page(session, query, ApiClient, limit=limit, cursor=cursor)
    if overseeing:
        await record_on_agency(
            session, principal, agency_id, "client.list", object_type="agency", object_id=agency_id
        )
    return page


async def _get_client(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> ApiClient:
    rights.require_admin(principal)
    client = await session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        raise NotFound("No such API client.")
    rights.require_agency_manager(principal, client.agency_id, missing="No such API client.")
    return client


async def rotate_client_secret(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, *, overlap_seconds: int = 0
) -> tuple[ApiClient, str]:
    """Issue a new secret. Without an overlap the old one, and every access token issued
    under it, stop at once; with one they keep working until `previous_secret_expires_at`.

    Only one previous secret is kept: a rotation during an overlap ends the older one.
    """
    client = await _get_client(session, principal, client_id)
    now = utcnow()
    if overlap_seconds:
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_expires_at = now + timedelta(seconds=overlap_seconds)
    else:
        client.previous_secret_hash = client.previous_secret_expires_at = None
    secret = new_secret(CLIENT_SECRET_PREFIX)
    client.secret_hash = digest_secret(secret)
    client.secret_hint = secret[:8]
    client.secret_rotated_at = now
    client.token_epoch += 1
    session.add(client)
    await session.flush()
    expires = client.previous_secret_expires_at
    await audit.record(
        session,
        principal,
        "client.rotate_secret",
        object_type="api_client",
        object_id=client.id,
        details={
            "overlap_seconds": overlap_seconds,
            "previous_secret_expires_at": expires.isoformat() if expires else None,
        },
    )
    return client, secret


async def delete_client(session: AsyncSession, principal: Principal, client_id: uuid.UUID) -> None:
    """Revoke an API client: its secret and every token it holds stop working."""
    client = await _get_client(session, principal, client_id)
    client.revoked_at = utcnow()
    session.add(client)
    await session.flush()
    await audit.record(
        session, principal, "client.delete", object_type="api_client", object_id=client.id
    )
