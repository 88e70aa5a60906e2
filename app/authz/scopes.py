"""The one check of a scope, and what its refusal says, for routes and services alike.

A route that checks a scope before it loads anything takes `RequireScope(...)`
(app/authz/deps.py); a service that checks it again (the console calls services too) or
only once its row is loaded (404 before 403) calls `require_scope`: both refuse with the
same 403.
"""

from __future__ import annotations

from app.authz.principal import Principal, Scope
from app.core.errors import Forbidden

REFUSALS: dict[Scope, str] = {
    Scope.alerts_read: "This needs the `alerts:read` scope.",
    Scope.alerts_write: "This needs the focal_point role or the `alerts:write` scope.",
    Scope.traces_write: "This needs the focal_point role or the `traces:write` scope.",
    Scope.webhooks_manage: "This needs the agency_admin role or the `webhooks:manage` scope.",
    Scope.alerts_read_red: "This needs the `alerts:read:red` scope.",
}


def require_scope(principal: Principal, scope: Scope) -> None:
    """Refuse (403) a principal that does not hold `scope`."""
    if not principal.has_scope(scope):
        if principal.personal_token_id is not None:
            # Its user's role may well hold the scope: the token does not.
            raise Forbidden(f"This personal access token does not carry the `{scope}` scope.")
        raise Forbidden(REFUSALS[scope])
