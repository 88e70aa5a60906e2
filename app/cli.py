"""The `tracewire` command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from app.core.config import Settings, get_settings

cli = typer.Typer(
    help="Tracewire: interagency alerts on weapons that may reach terrorists.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


async def _migrate(settings: Settings) -> str | None:
    from app.core import migrate
    from app.core.db import create_engine

    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


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
    from app.seed import create_platform_admin

    settings = get_settings()
    asyncio.run(_migrate(settings))
    try:
        created = asyncio.run(create_platform_admin(settings, email, password, full_name))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"platform administrator {'created' if created else 'updated'}: {email}")


def _run_demo(settings: Settings, base_url: str | None = None) -> None:
    from app.seed import DEMO_DOMAIN, seed_demo

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


@cli.command("export-stix")
def export_stix(
    agency: Annotated[str, typer.Option(help="The agency id whose view is exported.")],
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Write a STIX 2.1 bundle of every alert the agency may see (audited as an export)."""
    import uuid

    from app.core.db import Database
    from app.core.errors import NotFound
    from app.interop import export

    try:
        agency_id = uuid.UUID(agency)
    except ValueError:
        console.print(f"[red]not an agency id: {agency}[/red]")
        raise typer.Exit(2) from None

    async def run() -> dict[str, object]:
        db = Database(get_settings())
        try:
            async with db.session() as session:
                bundle = await export.export_for_agency(session, agency_id)
                await session.commit()
                return bundle
        finally:
            await db.dispose()

    try:
        bundle = asyncio.run(run())
    except NotFound as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"{len(bundle['objects'])} STIX objects written to {out}")  # type: ignore[arg-type]


audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


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
    from app.core.db import Database

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
        db = Database(settings)
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
    from app.core.db import Database

    settings = get_settings()
    key = _audit_key(settings, signing=True)

    async def run() -> SignedHead | None:
        db = Database(settings)
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


def main() -> None:
    """Entry point of the `tracewire` console script."""
    cli()
