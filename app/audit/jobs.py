"""The audit trail's background jobs: linking what a crashed process left, signing the head."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import chain, service
from app.audit.heads import SignedHead

log = logging.getLogger("tracewire.audit")


async def link_leftovers(session: AsyncSession) -> int:
    """Link committed records that no process linked (it died right after its commit)."""
    return await chain.sweep(session)


def head_signer(key: Ed25519PrivateKey) -> Callable[[AsyncSession], Awaitable[int]]:
    """A job that signs the chain's head, each time checking the chain still extends the
    head it signed before (kept in memory, out of reach of the database)."""
    last: list[SignedHead] = []

    async def sign_audit_head(session: AsyncSession) -> int:
        try:
            head = await service.sign_head(session, key, extends=last[0] if last else None)
        except service.ChainBroken as exc:
            log.error("audit head not signed: %s", exc)
            return 0
        if head is None or (last and last[0].seq == head.seq):
            return 0
        last[:] = [head]
        return 1

    return sign_audit_head
