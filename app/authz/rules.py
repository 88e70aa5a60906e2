"""Alert access rules over the principal alone: who may read, post and change alerts.

Which alerts a reader sees is the sharing package's business (audiences, TLP, policy);
these checks need no alert table, so every package that serves alerts (alerts, traces,
hits, interop) asks them here, below the packages that hold the rows.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from app.authz import scopes
from app.authz.principal import Principal, Scope
from app.core.errors import Forbidden


class Originated(Protocol):
    """What the edit rule reads of an alert: the agency that posted it."""

    @property
    def originator_agency_id(self) -> uuid.UUID: ...


def require_alert_reader(principal: Principal) -> None:
    """Reading alerts needs `alerts:read` (every user role has it)."""
    scopes.require_scope(principal, Scope.alerts_read)


def require_alert_author(principal: Principal) -> None:
    """Posting alerts needs `alerts:write` (focal points and above, or such a client)."""
    scopes.require_scope(principal, Scope.alerts_write)


def can_edit(alert: Originated, principal: Principal) -> bool:
    """Whether the principal may change a (visible) alert: an author of its originator."""
    return (
        principal.has_scope(Scope.alerts_write)
        and alert.originator_agency_id == principal.agency_id
    )


def require_alert_editor(alert: Originated, principal: Principal) -> None:
    """Refuse (403) a change to a visible alert by anyone but its originator's authors."""
    if not can_edit(alert, principal):
        raise Forbidden("Only focal points of the originating agency may change this alert.")
