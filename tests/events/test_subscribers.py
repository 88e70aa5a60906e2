"""The event log publishes and the webhooks subscribe: an unheard event is refused, loudly."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app import cli
from app.cli import ops as cli_ops
from app.core.config import Settings
from app.events import service as events
from app.events.models import Event, EventType
from app.main import create_app
from app.webhooks.delivery.worker import DeliveryWorker
from app.worker import Worker

EVENTS_PACKAGE = Path(__file__).resolve().parents[2] / "app" / "events"


@pytest.fixture
def no_subscribers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process in which nothing registered yet (the registry is process-wide)."""
    monkeypatch.setattr(events, "_handlers", {})


async def test_an_event_to_fan_out_with_no_subscriber_is_refused(db, no_subscribers):
    async with db.session() as session:
        with pytest.raises(events.NoSubscribers):
            await events.record(session, EventType.ping, agency_ids=[], data={})
        assert (await session.exec(select(Event))).all() == []


async def test_an_event_not_fanned_out_needs_no_subscriber(db, no_subscribers):
    async with db.session() as session:
        event = await events.record(session, EventType.ping, data={}, fan_out=False)
        assert (await session.exec(select(Event))).all() == [event]


async def test_every_subscriber_hears_each_event_once(db, no_subscribers):
    heard: list[tuple[str, str]] = []

    async def note(name: str, recorded: Sequence[Event]) -> events.Written:
        heard.extend((name, event.type) for event in recorded)
        return events.Written()

    events.subscribe("one", lambda _session, recorded: note("one", recorded))
    events.subscribe("two", lambda _session, recorded: note("two", recorded))
    events.subscribe("one", lambda _session, recorded: note("one", recorded))  # again: replaces
    async with db.session() as session:
        await events.record(session, EventType.ping, data={})
    assert heard == [("one", "ping"), ("two", "ping")]


async def test_create_app_registers_the_webhooks(settings, no_subscribers):
    application = create_app(settings)
    try:
        assert events.subscribers() == ["webhooks"]
    finally:
        await application.state.db.dispose()


def test_the_worker_command_registers_the_webhooks(
    settings: Settings, no_subscribers, monkeypatch: pytest.MonkeyPatch
):
    async def nothing(*_args: object) -> None:
        return None

    # Everything but the registration is stubbed: no migration, no loops, no log set-up.
    monkeypatch.setattr(cli_ops, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_ops, "run_migrations", nothing)
    monkeypatch.setattr("app.core.logging.configure_logging", lambda *_a, **_k: None)
    monkeypatch.setattr(Worker, "run", nothing)
    monkeypatch.setattr(DeliveryWorker, "run", nothing)
    result = CliRunner().invoke(cli.cli, ["worker"])
    assert result.exit_code == 0, result.output
    assert events.subscribers() == ["webhooks"]


def test_no_module_of_app_events_imports_the_webhooks():
    for path in sorted(EVENTS_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not [n for n in names if n.startswith("app.webhooks")], path.name
