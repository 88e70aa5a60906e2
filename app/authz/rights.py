"""Administrative rights: who may manage which agency, user and API client.

Alert visibility is a separate rule (DESIGN §4); this module decides the admin side
(DESIGN §2). A principal that may not manage anything gets 403; an agency admin that
reaches into another agency gets 404, so it learns nothing about it.

Separation of duties: a platform administrator manages the *set* of agencies (register,
suspend, reactivate, invite an agency's first administrator) and its own agency like an
agency administrator, but never another agency's users, clients, groups or policy
(403: the directory already tells it that the agency exists).

A user acting through a personal access token has no role (`Principal.narrowed`), so
every administrative right below refuses it; what it may do follows from its scopes.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.authz import scopes
from app.authz.principal import ActorKind, Principal, Role, Scope
from app.core.errors import Forbidden, NotFound


def require_platform_admin(principal: Principal) -> None:
    """Only the operator's staff manage the set of agencies."""
    if not principal.is_platform_admin:
        raise Forbidden("Only a platform administrator may do this.")


def require_admin(principal: Principal) -> None:
    """Only administrators (of an agency, or of the platform) manage users and clients."""
    if principal.kind != ActorKind.user or not principal.is_admin:
        raise Forbidden("Only an agency administrator may manage users and API clients.")


def require_agency_manager(
    principal: Principal, agency_id: uuid.UUID, *, missing: str = "No such agency."
) -> None:
    """The principal may change users, clients, groups or policy of `agency_id`, or is refused.

    Only that agency's own administrators may; running the platform gives no such right.
    Another agency's admin gets the 404 of the thing it asked for (`missing`), the same
    answer as for an id that does not exist.
    """
    require_admin(principal)
    if principal.agency_id == agency_id:
        return
    if principal.is_platform_admin:
        raise Forbidden(
            "A platform administrator does not manage another agency's users, API clients, "
            "sharing groups or policy; that agency's administrators do."
        )
    raise NotFound(missing)


AGENCY_OWN_FIELDS = frozenset({"contact_email"})


def require_agency_editor(principal: Principal, agency_id: uuid.UUID, fields: set[str]) -> None:
    """Who changes which fields of an agency's directory entry.

    The operator keeps the register (name, country, type, focal-point flag, status); the
    contact address that counterparts are sent to (hits, register checks) is the agency's
    own, set by its administrators after registration: an operator who could change it
    could route other agencies' contact to a mailbox it reads.
    """
    if principal.is_platform_admin:
        if agency_id != principal.agency_id and fields & AGENCY_OWN_FIELDS:
            raise Forbidden(
                "An agency's contact address is changed by that agency's administrators."
            )
        return
    require_agency_manager(principal, agency_id)
    if fields - AGENCY_OWN_FIELDS:
        raise Forbidden(
            "Only a platform administrator changes an agency's name, country, type or status."
        )


def require_agency_overseer(
    principal: Principal, agency_id: uuid.UUID, *, missing: str = "No such agency."
) -> bool:
    """The principal may *list* users and clients of `agency_id`; True when it is an
    operator looking at another agency (the read then goes into that agency's trail)."""
    require_admin(principal)
    if principal.agency_id == agency_id:
        return False
    if principal.is_platform_admin:
        return True
    raise NotFound(missing)


def require_role_grant(principal: Principal, role: Role | None) -> None:
    """Only the operator's staff may grant (or hold the power to touch) `platform_admin`."""
    if role is Role.platform_admin and not principal.is_platform_admin:
        raise Forbidden("Only a platform administrator may grant or change platform_admin.")


def require_in_person(principal: Principal) -> None:
    """Only a user acting through a login manages their own credentials (personal access
    tokens): not an API client, and not a script holding one of those tokens."""
    if not principal.in_person:
        raise Forbidden(
            "Only a user signed in with their password (or the console) may do this; "
            "API clients and personal access tokens may not."
        )


def require_webhook_manager(principal: Principal) -> None:
    """Subscriptions are managed by agency admins or clients with `webhooks:manage`.

    A subscription delivers what its managing *user* reads (app/sharing/render.py), so a
    personal access token manages one only if it also carries `alerts:read`: otherwise a
    token without it would have alert content sent to an address of its choosing.
    """
    scopes.require_scope(principal, Scope.webhooks_manage)
    if principal.personal_token_id is not None:
        scopes.require_scope(principal, Scope.alerts_read)


def own_agency_filter(column: Any, principal: Principal) -> Any:
    """SQL: rows owned by the principal's agency (subscriptions and their logs)."""
    return column == principal.agency_id


def owns(principal: Principal, owner_agency_id: uuid.UUID) -> bool:
    """A record of one agency (a subscription, a TAXII status): nobody else sees it (404)."""
    return owner_agency_id == principal.agency_id


def audit_agency(principal: Principal, wanted: uuid.UUID | None) -> uuid.UUID | None:
    """Whose records the principal may read: its agency's (admins), or any (operators)."""
    if principal.kind != ActorKind.user or not principal.is_admin:
        raise Forbidden("Only administrators read the audit trail.")
    if principal.is_platform_admin:
        return wanted
    if wanted is not None and wanted != principal.agency_id:
        raise NotFound("No such agency.")
    return principal.agency_id
