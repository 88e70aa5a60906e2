"""The `tracewire` command."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.core.config import ConfigurationError, Settings, get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from app.core.db import Database

cli = typer.Typer(
    help="Tracewire: interagency alerts on weapons that may reach terrorists.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's local variables would print passwords and database URLs.
    pretty_exceptions_show_locals=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("tracewire.cli")
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


async def _migrate(settings: Settings) -> str | None:
    from app.core.db import create_engine

    engine = create_engine(settings)
    try:
        try:
            async with engine.connect():
                pass
        except (OSError, SQLAlchemyError) as exc:
            raise ConfigurationError([_unreachable(settings, exc)]) from None
        from app.core import migrate  # Alembic logs its plugins when imported

        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


async def _connected(settings: Settings) -> Database:
    """The database, once it has answered; ConfigurationError when it cannot be opened."""
    from app.core.db import Database

    db = Database(settings)
    try:
        await db.ping()
    except (OSError, SQLAlchemyError) as exc:
        await db.dispose()
        raise ConfigurationError([_unreachable(settings, exc)]) from None
    return db


def _unreachable(settings: Settings, exc: BaseException) -> str:
    """Why the database cannot be reached, without the URL's password."""
    from sqlalchemy.engine import make_url

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    password = make_url(settings.database_url.get_secret_value()).password
    if password:
        reason = reason.replace(str(password), "***")
    return f"TRACEWIRE_DATABASE_URL: cannot open the database ({reason.rstrip(': ')})"


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


@cli.command()
def migrate() -> None:
    """Apply pending database migrations."""
    revision = asyncio.run(_migrate(get_settings()))
    console.print(f"database at revision [bold]{revision}[/bold]")


@cli.command()
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
    asyncio.run(_migrate(settings))
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


@cli.command()
def worker() -> None:
    """Migrate, then run the background jobs and webhook deliveries until SIGINT or SIGTERM."""
    import signal

    from app.core.db import Database
    from app.core.logging import configure_logging
    from app.webhooks.delivery import DeliveryWorker
    from app.worker import Worker, schedules

    settings = get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    asyncio.run(_migrate(settings))
    settings.audit_signing_seed()  # generated into the data directory on first start if unset

    async def run() -> None:
        db = Database(settings)
        runners = [Worker(db, schedules(settings)), DeliveryWorker(db, settings)]
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: [r.stop() for r in runners])
        try:
            await asyncio.gather(*(r.run() for r in runners))
        finally:
            await db.dispose()

    asyncio.run(run())


@cli.command("create-admin")
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
    asyncio.run(_migrate(settings))
    try:
        created = asyncio.run(create_platform_admin(settings, email, password, full_name))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"platform administrator {'created' if created else 'updated'}: {email}")


def _run_demo(settings: Settings, base_url: str | None = None) -> None:
    from app.seed.demo import DEMO_DOMAIN, seed_demo

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


@cli.command()
def demo() -> None:
    """Migrate and seed realistic demo data (safe to run twice); print the credentials."""
    settings = get_settings()
    asyncio.run(_migrate(settings))
    _run_demo(settings)


@cli.command()
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


AGENCY_HELP = "The agency: its id, its name, or its country code when it is the only one there."


@cli.command("export-stix")
def export_stix(
    agency: Annotated[str, typer.Option(help=AGENCY_HELP)],
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Write a STIX 2.1 bundle of every alert the agency may see (audited as an export)."""
    from app.core.errors import AppError
    from app.interop import export
    from app.ops import directory

    async def run() -> dict[str, object]:
        db = await _connected(get_settings())
        try:
            async with db.session() as session:
                found = await directory.find_agency(session, agency)
                bundle = await export.export_for_agency(session, found.id)
                await session.commit()
                return bundle
        finally:
            await db.dispose()

    try:
        bundle = asyncio.run(run())
    except AppError as exc:
        err_console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"{len(bundle['objects'])} STIX objects written to {out}")  # type: ignore[arg-type]


audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


def _audit_key(settings: Settings, *, signing: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    """The audit key the command needs, from the settings or a key file; exit 2 without one."""
    from app.audit import heads

    try:
        key = heads.signing_key(settings) if signing else heads.verify_key(settings)
    except (heads.NoAuditKey, OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    if key is None:
        console.print("[red]no audit signing key here: set TRACEWIRE_AUDIT_SIGNING_KEY[/red]")
        raise typer.Exit(2)
    return key


@audit_cli.command("verify")
def audit_verify(
    against: Annotated[
        Path | None,
        typer.Option(
            help="A head printed earlier by `tracewire audit head` and kept elsewhere: the "
            "chain must still extend it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check the whole audit chain and its signed heads; exit 1 naming the first broken record."""
    from app.audit import service as audit
    from app.audit.heads import SignedHead

    settings = get_settings()
    key = _audit_key(settings, signing=False)
    witnessed = None
    if against is not None:
        try:
            witnessed = SignedHead.from_json(against.read_text(encoding="utf-8"))
        except ValueError as exc:
            console.print(f"[red]{against}: {exc}[/red]")
            raise typer.Exit(2) from None

    async def run() -> audit.Verdict:
        db = await _connected(settings)
        try:
            async with db.session() as session:
                return await audit.verify(session, key, against=witnessed)  # type: ignore[arg-type]
        finally:
            await db.dispose()

    verdict = asyncio.run(run())
    if not verdict.ok:
        console.print(
            f"[red]audit chain broken at record {verdict.first_broken_seq}: {verdict.reason}[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    parts = [f"audit chain intact: {verdict.checked} records"]
    if verdict.signed_head_seq:
        parts.append(f"signed head at {verdict.signed_head_seq}")
    if verdict.witnessed_seq:
        parts.append(f"extends the witnessed head at {verdict.witnessed_seq}")
    if verdict.unchained:
        parts.append(f"{verdict.unchained} committed records not linked yet")
    console.print(", ".join(parts) + f" (key {verdict.key_id})", soft_wrap=True)


@audit_cli.command("head")
def audit_head(
    out: Annotated[
        Path | None, typer.Option(help="Also write the head to this file.", dir_okay=False)
    ] = None,
) -> None:
    """Sign the chain's current head and print it, for a witness to keep outside this system."""
    from app.audit import chain
    from app.audit import service as audit
    from app.audit.heads import SignedHead

    settings = get_settings()
    key = _audit_key(settings, signing=True)

    async def run() -> SignedHead | None:
        db = await _connected(settings)
        try:
            async with db.session() as session:
                await chain.sweep(session)  # what a crashed process left, so the head covers it
                head = await audit.sign_head(session, key)  # type: ignore[arg-type]
                await session.commit()
                return head
        finally:
            await db.dispose()

    try:
        head = asyncio.run(run())
    except audit.ChainBroken as exc:
        console.print(f"[red]refusing to sign: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    if head is None:
        console.print("[red]the audit chain is empty: nothing to sign yet[/red]")
        raise typer.Exit(1)
    text = head.to_json() + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    typer.echo(text, nl=False)


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """Print the public key heads are checked with (TRACEWIRE_AUDIT_PUBLIC_KEY for an auditor)."""
    from app.audit import heads

    key = _audit_key(get_settings(), signing=False)
    public = key.public_key() if isinstance(key, heads.Ed25519PrivateKey) else key
    typer.echo(f"{heads.public_key_text(public)}  key id {heads.key_id(public)}")


agencies_cli = typer.Typer(help="The agencies.", no_args_is_help=True)
cli.add_typer(agencies_cli, name="agencies")
users_cli = typer.Typer(help="The users of an agency.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _emit(rows: list[dict[str, object]], columns: list[str], as_json: bool) -> None:
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    cells = [columns, *[["" if row[c] is None else str(row[c]) for c in columns] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


@agencies_cli.command("list")
def agencies_list(as_json: JsonOption = False) -> None:
    """Every agency: id, country, type, status and name."""
    from app.ops import directory

    async def run() -> list[dict[str, object]]:
        db = await _connected(get_settings())
        try:
            async with db.session() as session:
                found = await directory.list_agencies(session)
                return [
                    {
                        "id": str(a.id),
                        "country": a.country,
                        "type": a.type,
                        "status": a.status,
                        "focal_point": a.is_focal_point,
                        "name": a.name,
                    }
                    for a in found
                ]
        finally:
            await db.dispose()

    rows = asyncio.run(run())
    _emit(rows, ["id", "country", "type", "status", "name"], as_json)


@users_cli.command("list")
def users_list(
    agency: Annotated[str, typer.Option(help=AGENCY_HELP)],
    as_json: JsonOption = False,
) -> None:
    """The agency's users: id, email, role, whether active, last login."""
    from app.core.errors import AppError
    from app.ops import directory

    async def run() -> list[dict[str, object]]:
        db = await _connected(get_settings())
        try:
            async with db.session() as session:
                found = await directory.find_agency(session, agency)
                return [
                    {
                        "id": str(u.id),
                        "email": u.email,
                        "role": u.role,
                        "active": u.is_active,
                        "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                        "full_name": u.full_name,
                    }
                    for u in await directory.list_users(session, found.id)
                ]
        finally:
            await db.dispose()

    try:
        rows = asyncio.run(run())
    except AppError as exc:
        err_console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    _emit(rows, ["id", "email", "role", "active", "last_login_at", "full_name"], as_json)


@cli.command("backup")
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


@cli.command("restore")
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


def main() -> None:
    """Entry point of the `tracewire` console script."""
    try:
        cli()
    except ConfigurationError as exc:
        # One line per fault, naming the variable; never a value, never a traceback.
        for problem in exc.problems:
            print(f"tracewire: configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
