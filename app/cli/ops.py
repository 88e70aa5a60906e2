"""Running the service: migrate, serve, worker, create-admin, demo, openapi, backup, restore."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, err_console, run_migrations
from app.core.config import Settings, get_settings

log = logging.getLogger("tracewire.cli")
OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def _warn_if_exposed(settings: Settings, host: str) -> None:
    """In `dev` placeholder database passwords pass: say so loudly when others can connect."""
    if settings.environment == "dev" and not is_loopback(host):
        log.warning(
            "listening on %s in the dev environment: placeholder database passwords are "
            "accepted and anyone who can reach this address can use them; bind 127.0.0.1 or set "
            "TRACEWIRE_ENVIRONMENT=prod",
            host,
        )


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def migrate() -> None:
    """Apply pending database migrations."""
    revision = asyncio.run(run_migrations(get_settings()))
    console.print(f"database at revision [bold]{revision}[/bold]")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes (PostgreSQL).")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed the demo data first.")] = False,
) -> None:
    """Migrate, then serve the API (and, on SQLite, the background worker in-process)."""
    import uvicorn

    from app.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    _warn_if_exposed(settings, host or settings.host)
    asyncio.run(run_migrations(settings))
    settings.audit_signing_seed()  # generated into the data directory on first start if unset
    if demo:
        # Unless an external URL is configured, print the address this process listens on.
        listening = f"http://{host or settings.host}:{port or settings.port}"
        _run_demo(settings, listening if "public_url" not in settings.model_fields_set else None)
    if workers > 1 and settings.is_sqlite:
        raise typer.BadParameter("several API processes need PostgreSQL", param_hint="--workers")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


def worker() -> None:
    """Migrate, then run the background jobs and webhook deliveries until SIGINT or SIGTERM."""
    import signal

    from app import wiring
    from app.core import heap
    from app.core.db import Database
    from app.core.logging import configure_logging
    from app.webhooks.delivery.worker import DeliveryWorker
    from app.worker import Worker, schedules

    wiring.install()  # the jobs record events (trace.overdue, hit.created) and match
    settings = get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    asyncio.run(run_migrations(settings))
    settings.audit_signing_seed()  # generated into the data directory on first start if unset

    async def run() -> None:
        db = Database(settings)
        runners: list[Worker | DeliveryWorker] = [
            Worker(db, schedules(settings)),
            DeliveryWorker(db, settings),
        ]
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: [r.stop() for r in runners])
        heap.freeze_start_up_objects()
        try:
            await asyncio.gather(*(r.run() for r in runners))
        finally:
            await db.dispose()

    # uvloop (uvicorn's, which the API already runs on) where installed: the worker spends
    # much of its time in socket I/O, which uvloop does for less CPU than asyncio's own loop.
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())


def create_admin(
    email: Annotated[str, typer.Argument(help="The administrator's email address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="TRACEWIRE_ADMIN_PASSWORD",
        ),
    ],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Platform administrator",
) -> None:
    """Create a platform administrator (and the operator agency if needed)."""
    from app.seed.bootstrap import create_platform_admin

    settings = get_settings()
    asyncio.run(run_migrations(settings))
    try:
        created = asyncio.run(create_platform_admin(settings, email, password, full_name))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"platform administrator {'created' if created else 'updated'}: {email}")


def _run_demo(settings: Settings, base_url: str | None = None) -> None:
    from app import wiring
    from app.seed.demo import DEMO_DOMAIN, seed_demo

    wiring.install()  # the demo publishes, withdraws and takes trace steps
    base_url = base_url or settings.public_url
    report = asyncio.run(seed_demo(settings))
    console.print("[bold]Tracewire demo data[/bold] (password for every demo user below):")
    console.print(f"  password: [bold]{report.password}[/bold]")
    for agency, users in report.users.items():
        console.print(f"  [bold]{agency}[/bold]")
        for email, role in users:
            console.print(f"    {role:<15} {email}")
    console.print("  API client of", report.client_agency)
    console.print(f"    client_id     {report.client_id}")
    console.print(f"    client_secret {report.client_secret}  (new on every demo run)")
    console.print(f"Web console: [bold]{base_url}/console/[/bold]")
    console.print(
        f"  log in as focal@ke.{DEMO_DOMAIN} and focal@de.{DEMO_DOMAIN} (two agencies), "
        f"admin@ke.{DEMO_DOMAIN} (agency admin) or operator@{DEMO_DOMAIN} (platform admin), "
        f"password {report.password}"
    )
    console.print(f"API docs: {base_url}/docs")


def demo() -> None:
    """Migrate and seed realistic demo data (safe to run twice); print the credentials."""
    settings = get_settings()
    asyncio.run(run_migrations(settings))
    _run_demo(settings)


def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = OPENAPI_PATH,
) -> None:
    """Write the OpenAPI document generated from the app."""
    from app.main import create_app

    document = create_app(get_settings()).openapi()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_openapi(document))
    console.print(f"wrote {output}")


def render_openapi(document: dict[str, object]) -> str:
    """The committed form of the OpenAPI document (stable key order)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def backup_command(
    destination: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Copy the SQLite database to a file while the service runs (PostgreSQL: pg_dump)."""
    from app.ops import backup

    try:
        copied = backup.backup(get_settings(), destination, overwrite=force)
    except backup.BackupError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"backed up to {copied.path}: {copied.bytes} bytes, {copied.audit_records} audit records"
    )


def restore_command(
    backup_file: Annotated[Path, typer.Argument(help="A file written by `tracewire backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the SQLite database with a backup (stop the service first)."""
    from app.ops import backup

    settings = get_settings()
    try:
        target = backup.database_file(settings)
        if not yes and target.exists():
            typer.confirm(f"Replace everything in {target} with {backup_file}?", abort=True)
        copied = backup.restore(settings, backup_file)
    except backup.BackupError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"restored {copied.path} from {backup_file}: {copied.audit_records} audit records; "
        "check it with `tracewire audit verify`"
    )
