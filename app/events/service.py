"""Record domain events in the caller's transaction, and tell the subscribers.

The event log publishes; it never imports its subscribers. Webhooks (and any later
mail or federation) register a handler with `subscribe()` when a process starts
(`app.wiring.install()`, called by `create_app()`, `tracewire worker` and the CLI
commands that write). A handler runs in
the transaction of the change, so what it writes (outbox rows) commits with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import inserts
from app.core.columns import table_of, values_of
from app.core.types import new_id, utcnow
from app.events.models import Event, EventType


@dataclass(frozen=True)
class Written:
    """What a handler writes with the events, in their statement: rows of its tables, and
    trusted SQL selected once they are written (a `pg_notify`), if any."""

    parts: inserts.Parts = ()
    then: str | None = None


Handler = Callable[[AsyncSession, Sequence[Event]], Awaitable[Written]]

# By name, so registering again (one create_app() per test) never runs a handler twice.
_handlers: dict[str, Handler] = {}
_EVENTS = table_of(Event)


class NoSubscribers(RuntimeError):
    """An event to fan out, in a process where no subscriber registered: it would be lost."""


def subscribe(name: str, handler: Handler) -> None:
    """Run `handler(session, events)` for the events of every `record_all` with `fan_out`."""
    _handlers[name] = handler


def subscribers() -> list[str]:
    """The names of the registered handlers."""
    return list(_handlers)


def new_event(
    type_: EventType,
    *,
    alert_id: uuid.UUID | None = None,
    agency_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
) -> Event:
    """An event to record (`record_all`), every field given."""
    return Event(
        id=new_id(),
        type=type_,
        alert_id=alert_id,
        agency_ids=list(agency_ids),
        data=data or {},
        created_at=utcnow(),
    )


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
    event = new_event(type_, alert_id=alert_id, agency_ids=agency_ids, data=data)
    await record_all(session, [event], fan_out=fan_out)
    return event


async def record_all(
    session: AsyncSession, recorded: Sequence[Event], *, fan_out: bool = True
) -> None:
    """Append events (one change's, or a batch's); each handler is called once with all
    of them, and what it writes (the webhooks: their deliveries) goes in the same
    statement as the events (app/core/inserts.py)."""
    # Refused before anything is written: a process that forgot to register the webhooks
    # would otherwise commit the change and silently never deliver it.
    if fan_out and not _handlers:
        kinds = ", ".join(sorted({e.type.value for e in recorded}))
        raise NoSubscribers(f"no subscriber registered to receive {kinds}")
    if not recorded:
        return
    # Core rows, not the unit of work for each object (the ORM path was a tenth of a
    # published alert's CPU, bench/RESULTS.md). Pending changes go first, so a handler
    # reads the state the events describe.
    await session.flush()
    parts: list[tuple[Any, inserts.Rows]] = [(_EVENTS, [values_of(e, _EVENTS) for e in recorded])]
    then: list[str] = []
    if fan_out:
        for handler in _handlers.values():
            written = await handler(session, recorded)
            parts += written.parts
            if written.then:
                then.append(written.then)
    await inserts.insert_all(session, parts, select=", ".join(then) or None)
