"""Alerts hand publication and withdrawal to hooks; a process without them writes nothing."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app import cli
from app.alerts import lifecycle
from app.alerts.models import Alert
from app.authz.principal import Role
from app.cli import ops as cli_ops
from app.core.config import Settings
from app.main import create_app
from app.traces.models import TraceRequest
from app.webhooks.delivery.worker import DeliveryWorker
from app.worker import Worker
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body

ALERTS_PACKAGE = Path(__file__).resolve().parents[2] / "app" / "alerts"
ABOVE_ALERTS = ("app.traces", "app.hits", "app.webhooks")
ALL_HOOKS = ["traces", "match", "count_receiving"]


@pytest.fixture
def unwired(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process in which no lifecycle hook registered yet (the registry is process-wide)."""
    monkeypatch.setattr(lifecycle, "_hooks", lifecycle._Hooks())


def test_no_module_of_app_alerts_imports_a_package_above_it():
    for path in sorted(ALERTS_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):  # lazy imports included
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not [n for n in names if n.startswith(ABOVE_ALERTS)], path.name


async def test_create_app_installs_every_hook(settings, unwired):
    application = create_app(settings)
    try:
        assert lifecycle.registered() == ALL_HOOKS
    finally:
        await application.state.db.dispose()


def test_the_worker_command_installs_every_hook(
    settings: Settings, unwired, monkeypatch: pytest.MonkeyPatch
):
    async def nothing(*_args: object) -> None:
        return None

    monkeypatch.setattr(cli_ops, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_ops, "run_migrations", nothing)
    monkeypatch.setattr("app.core.logging.configure_logging", lambda *_a, **_k: None)
    monkeypatch.setattr(Worker, "run", nothing)
    monkeypatch.setattr(DeliveryWorker, "run", nothing)
    result = CliRunner().invoke(cli.cli, ["worker"])
    assert result.exit_code == 0, result.output
    assert lifecycle.registered() == ALL_HOOKS


async def test_without_the_hooks_nothing_is_published_or_withdrawn(
    client, db, app, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    hashing = app.state.auth.hashing
    ke, de = await make_agency(db, country="KE"), await make_agency(db, country="DE")
    author = await make_actor(client, db, hashing, ke, Role.focal_point)
    published = await post_alert(client, author, seizure_body())
    trace = await post_alert(client, author, trace_body(de))
    draft = await post_alert(client, author, seizure_body(), publish=False)
    monkeypatch.setattr(lifecycle, "_hooks", lifecycle._Hooks())

    refused = [
        await client.post(
            "/api/v1/alerts", json=seizure_body(publish=True), headers=author.headers
        ),
        await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=author.headers),
    ]
    for alert in (published, trace):
        refused.append(
            await client.post(
                f"/api/v1/alerts/{alert['id']}/withdraw",
                json={"reason": "posted in error"},
                headers=author.headers,
            )
        )
    refused.append(
        await client.post(
            f"/api/v1/trace-requests/{trace['id']}/withdraw",
            json={"reason": "posted in error"},
            headers=author.headers,
        )
    )
    assert [r.status_code for r in refused] == [500] * 5
    causes = [r.exc_info[0] for r in caplog.records if r.exc_info and r.exc_info[0]]
    assert causes == [lifecycle.NotWired] * 5
    # A draft needs no hook: it sets nothing off.
    kept = await client.post(
        "/api/v1/alerts", json=seizure_body(publish=False), headers=author.headers
    )
    assert kept.status_code == 201, kept.text
    async with db.session() as session:
        statuses = {a.id: a.status for a in (await session.exec(select(Alert))).all()}
        workflow = await session.get(TraceRequest, uuid.UUID(trace["id"]))
    assert sorted(statuses.values()) == ["draft", "draft", "published", "published"]
    assert statuses[uuid.UUID(draft["id"])] == "draft"
    assert workflow is not None and workflow.state == "submitted"
