"""Reading the directory from the command line: agencies, users, a STIX export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import AGENCY_HELP, connected, console, err_console
from app.core.config import get_settings


def export_stix(
    agency: Annotated[str, typer.Option(help=AGENCY_HELP)],
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Write a STIX 2.1 bundle of every alert the agency may see (audited as an export)."""
    from app.core.errors import AppError
    from app.interop import export
    from app.ops import directory

    async def run() -> dict[str, Any]:
        db = await connected(get_settings())
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
    console.print(f"{len(bundle['objects'])} STIX objects written to {out}")


agencies_cli = typer.Typer(help="The agencies.", no_args_is_help=True)
users_cli = typer.Typer(help="The users of an agency.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _emit(rows: list[dict[str, object]], columns: list[str], as_json: bool) -> None:
    """Print rows as an aligned table, or as JSON lines."""
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
        db = await connected(get_settings())
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
        db = await connected(get_settings())
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
