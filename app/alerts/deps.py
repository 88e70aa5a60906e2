"""Typed guard dependencies of the alert routes: the caller's scopes and the alert, checked.

`VisibleAlert` loads the alert through the one visibility rule (`query.get_visible_alert`,
the loader the console and TAXII call too): 404 when it is missing *or* not visible,
never 403, so a caller learns nothing of alerts it may not see.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.alerts import query as alert_query
from app.alerts.models import Alert
from app.authz.deps import DeferredScope, RequireScope
from app.authz.principal import Principal, Scope
from app.core.db import SessionDep

# Reading alerts (every user role has `alerts:read`): 403 before anything is loaded.
AlertReader = Annotated[Principal, RequireScope(Scope.alerts_read)]
# Posting alerts: 403 before anything is loaded.
AlertAuthor = Annotated[Principal, RequireScope(Scope.alerts_write)]
# Changing a loaded alert: `alerts:write` is checked with the editor rule once the alert
# is found visible (app/authz/rules.py), so another agency's alert stays a 404.
AlertEditor = Annotated[Principal, DeferredScope(Scope.alerts_write)]


async def get_visible_alert(
    alert_id: uuid.UUID, session: SessionDep, principal: AlertReader
) -> Alert:
    """The alert of the path, if the caller's agency may see it; 404 otherwise."""
    return await alert_query.get_visible_alert(session, principal, alert_id)


VisibleAlert = Annotated[Alert, Depends(get_visible_alert)]
