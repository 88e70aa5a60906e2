"""An agency's sharing policy: its per-kind default handling and ceiling, read and replaced."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.audit import service as audit
from app.authz import rights
from app.authz.principal import Principal
from app.core import concurrency
from app.core.errors import NotFound
from app.sharing import service as sharing
from app.sharing.models import SharingPolicy
from app.sharing.schemas import SharingPolicyBody, SharingPolicyRead


def _require_policy_reader(principal: Principal, agency_id: uuid.UUID) -> None:
    # An agency's own principals only: running the platform gives no sight of it either.
    if principal.agency_id != agency_id:
        raise NotFound("No such agency.")


async def get_policy(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID
) -> SharingPolicyRead:
    """An agency's policy; only its own principals read it."""
    _require_policy_reader(principal, agency_id)
    if await session.get(Agency, agency_id) is None:
        raise NotFound("No such agency.")
    row = await session.get(SharingPolicy, agency_id)
    body = sharing.stored_policy(row.rules)[0] if row else SharingPolicyBody()
    return SharingPolicyRead(
        agency_id=agency_id,
        kinds=body.kinds,
        updated_at=row.updated_at if row else None,
        version=row.version if row else 0,
    )


async def put_policy(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    data: SharingPolicyBody,
    *,
    if_match: str | None = None,
) -> SharingPolicyRead:
    """Replace an agency's policy; each default must itself obey the rules and its ceiling.

    `If-Match` (optional) names the version replaced; `"0"` is the policy never set.
    """
    rights.require_agency_manager(principal, agency_id)
    if await session.get(Agency, agency_id) is None:
        raise NotFound("No such agency.")
    # Two first policies of one agency at once: the second insert fails on the primary
    # key and is answered 409, so "no row to lock" needs no lock of its own.
    row = await concurrency.get_for_change(session, SharingPolicy, agency_id)
    concurrency.check_version(row.version if row else 0, if_match, required=False, what="policy")
    for kind, policy in data.kinds.items():
        if policy.default is None:
            continue
        field = f"kinds.{kind.value}.default"
        await sharing.validate_handling(
            session,
            principal,
            policy.default,
            kind=kind,
            addressed_to=None,
            ceiling=policy.ceiling.model_dump() if policy.ceiling else None,
            field=field,
        )
    if row is None:
        row = SharingPolicy(agency_id=agency_id, version=0)
    row.rules = data.model_dump(mode="json")
    row.updated_by = principal.id
    concurrency.bump(row)
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, "policy.update", object_type="agency", object_id=agency_id
    )
    return SharingPolicyRead(
        agency_id=agency_id, kinds=data.kinds, updated_at=row.updated_at, version=row.version
    )
