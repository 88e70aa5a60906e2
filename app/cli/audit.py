"""`tracewire audit …`: check the audit chain, sign its head, show the public key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, overload

import typer

from app.cli.common import connected, console
from app.core.config import Settings, get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)


@overload
def _audit_key(settings: Settings, *, signing: Literal[True]) -> Ed25519PrivateKey: ...
@overload
def _audit_key(settings: Settings, *, signing: Literal[False]) -> Ed25519PublicKey: ...
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
        db = await connected(settings)
        try:
            async with db.session() as session:
                return await audit.verify(session, key, against=witnessed)
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
        db = await connected(settings)
        try:
            async with db.session() as session:
                await chain.sweep(session)  # what a crashed process left, so the head covers it
                head = await audit.sign_head(session, key)
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
