"""Who is calling: roles, scopes and the authenticated principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """A user's role; `reader` < `focal_point` < `agency_admin`, plus the operator's staff."""

    reader = "reader"
    focal_point = "focal_point"
    agency_admin = "agency_admin"
    platform_admin = "platform_admin"


class ActorKind(StrEnum):
    """Who acted: a principal (a user or an API client), or nobody signed in: the service's
    own worker, or an anonymous caller (a failed login, named by what it typed)."""

    user = "user"
    client = "client"
    worker = "worker"
    anonymous = "anonymous"


class Scope(StrEnum):
    """What an API client (or, through its role, a user) may do."""

    alerts_read = "alerts:read"
    alerts_write = "alerts:write"
    traces_write = "traces:write"
    webhooks_manage = "webhooks:manage"
    # TLP:RED content for a machine: granted to a client explicitly, never implied by
    # another scope or a role (a user's role decides what the user reads).
    alerts_read_red = "alerts:read:red"


_ROLE_HELD = frozenset(Scope) - {Scope.alerts_read_red}
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.reader: frozenset({Scope.alerts_read}),
    Role.focal_point: frozenset({Scope.alerts_read, Scope.alerts_write, Scope.traces_write}),
    Role.agency_admin: _ROLE_HELD,
    Role.platform_admin: _ROLE_HELD,
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or API client, as the request's access token describes it."""

    kind: Literal[ActorKind.user, ActorKind.client]
    id: uuid.UUID
    agency_id: uuid.UUID
    role: Role | None
    scopes: frozenset[Scope]
    name: str
    token_id: str
    session_id: uuid.UUID | None = None

    @property
    def is_platform_admin(self) -> bool:
        """Operator staff: manage every agency (but read alerts only as their own agency)."""
        return self.role is Role.platform_admin

    @property
    def is_admin(self) -> bool:
        """An agency administrator or operator staff."""
        return self.role in (Role.agency_admin, Role.platform_admin)

    def has_scope(self, scope: Scope) -> bool:
        """Whether the principal holds `scope`."""
        return scope in self.scopes
