"""Typed guard dependencies of the hit routes: the hit, as one of its two sides.

`HitParty` loads a hit through the loader the console calls too (`read.get_hit`): 404
unless it is on one of the caller's agency's records and the disclosure rule lets that
agency know of it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.alerts.deps import AlertReader
from app.authz.deps import DeferredScope
from app.authz.principal import Principal, Scope
from app.core.db import SessionDep
from app.hits import read
from app.hits.models import Hit

# Confirming or dismissing: `alerts:write` is checked once the hit is found on one of
# the caller's sides (app/authz/parties.py), so another agency's hit stays a 404.
HitActor = Annotated[Principal, DeferredScope(Scope.alerts_write)]


async def get_hit_party(hit_id: uuid.UUID, session: SessionDep, principal: AlertReader) -> Hit:
    """The hit of the path, if the caller's agency is one of its sides and may know of it."""
    return await read.get_hit(session, principal, hit_id)


HitParty = Annotated[Hit, Depends(get_hit_party)]
