"""Typed guard dependencies of the webhook routes: a manager, and its agency's subscription.

Managing webhooks needs `webhooks:manage` (agency admins, or such a client): 403 before
anything is loaded. `OwnSubscription` loads a subscription through the loader the
console calls too (`service.get`): 404 unless it is live and the caller's agency's.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.authz.deps import RequireScope
from app.authz.principal import Principal, Scope
from app.core.db import SessionDep
from app.webhooks import service
from app.webhooks.models import Subscription

WebhookManager = Annotated[Principal, RequireScope(Scope.webhooks_manage)]


async def get_own_subscription(
    sub_id: uuid.UUID, session: SessionDep, principal: WebhookManager
) -> Subscription:
    """The live subscription of the path, if it is the caller's agency's; 404 otherwise."""
    return await service.get(session, principal, sub_id)


OwnSubscription = Annotated[Subscription, Depends(get_own_subscription)]
