"""Who is calling: roles, scopes and the authenticated principal."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
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
    """An authenticated user or API client, as the request's access token describes it.

    A user acting through a personal access token (`personal_token_id` set) holds no role:
    every power a role gives (administration, operating the platform, disclosing a hit)
    is withheld from it, and what it may do follows from its `scopes` alone (`narrowed`).
    """

    kind: Literal[ActorKind.user, ActorKind.client]
    id: uuid.UUID
    agency_id: uuid.UUID
    role: Role | None
    scopes: frozenset[Scope]
    name: str
    token_id: str
    session_id: uuid.UUID | None = None
    personal_token_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        # Fail closed: a principal built any other way than `narrowed` must not slip a
        # role past the personal access token that stands for it.
        if self.personal_token_id is not None and self.role is not None:
            raise ValueError("a personal access token's principal holds no role")

    @property
    def is_platform_admin(self) -> bool:
        """Operator staff: manage every agency (but read alerts only as their own agency)."""
        return self.role is Role.platform_admin and self.personal_token_id is None

    @property
    def is_admin(self) -> bool:
        """An agency administrator or operator staff."""
        return (
            self.role in (Role.agency_admin, Role.platform_admin) and self.personal_token_id is None
        )

    @property
    def in_person(self) -> bool:
        """A user acting through a login (a password grant's token or a console session):
        neither an API client nor a script holding one of the user's personal tokens."""
        return self.kind == ActorKind.user and self.personal_token_id is None

    def has_scope(self, scope: Scope) -> bool:
        """Whether the principal holds `scope`."""
        return scope in self.scopes


def narrowed(
    user: Principal, scopes: Iterable[Scope], *, personal_token_id: uuid.UUID, token_id: str
) -> Principal:
    """The principal of `user` acting through a personal access token carrying `scopes`.

    The one place a personal access token's powers are decided: the user's role is dropped
    and its scopes are cut down to those the token carries (and the role still holds).
    """
    if not user.in_person:
        raise ValueError("only a user acting in person can be narrowed to a token")
    return dataclasses.replace(
        user,
        role=None,
        scopes=user.scopes & frozenset(scopes),
        token_id=token_id,
        session_id=None,
        personal_token_id=personal_token_id,
    )
