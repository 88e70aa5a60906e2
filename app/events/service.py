"""Record domain events in the caller's transaction, and tell the subscribers.

The event log publishes; it never imports its subscribers. Webhooks (and any later
mail or federation) register a handler with `subscribe()` when a process starts
(`app.wiring.install()`, called by `create_app()`, `tracewire worker` and the CLI
commands that write). A handler runs in
the transaction of the change, so what it writes (outbox rows) commits with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.columns import table_of, values_of
from app.core.types import new_id, utcnow
from app.events.models import Event, EventType

Handler = Callable[[AsyncSession, Event], Awaitable[None]]

# By name, so registering again (one create_app() per test) never runs a handler twice.
_handlers: dict[str, Handler] = {}
_EVENTS = table_of(Event)


class NoSubscribers(RuntimeError):
    """An event to fan out, in a process where no subscriber registered: it would be lost."""


def subscribe(name: str, handler: Handler) -> None:
    """Run `handler(session, event)` for every event recorded with `fan_out`."""
    _handlers[name] = handler


def subscribers() -> list[str]:
    """The names of the registered handlers."""
    return list(_handlers)


async def record(
    session: AsyncSession,
    type_: EventType,
    *,
    alert_id: uuid.UUID | None = None,
    agency_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
    fan_out: bool = True,
) -> Event:
    """Append an event; it commits (or not) with the change it describes."""
    # Refused before anything is written: a process that forgot to register the webhooks
    # would otherwise commit the change and silently never deliver it.
    if fan_out and not _handlers:
        raise NoSubscribers(f"no subscriber registered to receive {type_.value}")
    event = Event(
        id=new_id(),
        type=type_,
        alert_id=alert_id,
        agency_ids=list(agency_ids),
        data=data or {},
        created_at=utcnow(),
    )
    # One INSERT of the row, not the unit of work for one object (the ORM path was a
    # tenth of a published alert's CPU, bench/RESULTS.md). Pending changes go first, so
    # a handler reads the state the event describes.
    await session.flush()
    await (await session.connection()).execute(sa.insert(_EVENTS), values_of(event, _EVENTS))
    if fan_out:
        for handler in _handlers.values():
            await handler(session, event)
    return event
