"""An insider with write access to the database rewrites the audit trail; verification says so.

The insider turns the append-only triggers off (as a database owner can), deletes or edits
records, recomputes every later hash with the published algorithm, and forges signed heads
with a key of their own. A head kept outside (the witness) and the key from the settings
catch each of these, on both databases.
"""

from __future__ import annotations

import base64
import secrets

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from app.audit import heads, jobs
from app.audit import service as audit
from app.audit.chain import GENESIS, chain_hash
from app.audit.heads import SignedHead
from app.audit.models import AuditRecord
from app.authz.principal import Role
from tests.factories import make_actor, make_agency, post_alert, seizure_body


@pytest.fixture
async def people(client, db, app):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    return {
        "focal": await make_actor(client, db, hashing, ke, Role.focal_point),
        "operator": await make_actor(
            client, db, hashing, await make_agency(db, country="XX"), Role.platform_admin
        ),
    }


async def _witness(db) -> SignedHead:
    """What `tracewire audit head` prints, kept outside the database."""
    async with db.session() as session:
        head = await audit.sign_head(session, heads.signing_key(db.settings))
        await session.commit()
    assert head is not None
    return head


async def _verify(db, against: SignedHead | None = None) -> audit.Verdict:
    async with db.session() as session:
        return await audit.verify(session, heads.verify_key(db.settings), against=against)


async def _as_insider(db, backend: str, *statements: tuple[str, dict]) -> None:
    """Run SQL with the append-only triggers out of the way, as a database owner could."""
    async with db.session() as session:
        if backend == "sqlite":
            for name in (
                "record_no_update",
                "record_no_delete",
                "head_no_update",
                "head_no_delete",
            ):
                await session.exec(text(f"DROP TRIGGER IF EXISTS audit_{name}"))
        else:
            await session.exec(text("ALTER TABLE audit_record DISABLE TRIGGER USER"))
            await session.exec(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        for sql, params in statements:
            await session.exec(text(sql), params=params)
        if backend != "sqlite":  # and covers their tracks
            await session.exec(text("ALTER TABLE audit_record ENABLE TRIGGER USER"))
            await session.exec(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))
        await session.commit()


async def _rechain(db, backend: str, from_seq: int) -> None:
    """Recompute the hash of every record from `from_seq` on, so the chain links again."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(AuditRecord)
                .where(col(AuditRecord.seq) >= from_seq - 1)
                .order_by(col(AuditRecord.seq))
            )
        ).all()
    prev = rows[0].hash if from_seq > 1 else GENESIS
    updates = []
    for row in rows[1:] if from_seq > 1 else rows:
        new = chain_hash(prev, row)
        updates.append(
            (
                "UPDATE audit_record SET prev_hash = :p, hash = :h WHERE seq = :s",
                {"p": prev, "h": new, "s": row.seq},
            )
        )
        prev = new
    await _as_insider(db, backend, *updates)


async def _three_alerts(client, people) -> None:
    for _ in range(3):
        await post_alert(client, people["focal"], seizure_body())


def _foreign_key():
    return heads.private_key(secrets.token_bytes(32))


async def test_deleting_the_last_records_is_detected_against_the_witness(
    client, db, people, backend
):
    await _three_alerts(client, people)
    witness = await _witness(db)
    assert (await _verify(db, witness)).ok
    cut = witness.seq - 2
    await _as_insider(
        db,
        backend,
        ("DELETE FROM audit_record WHERE seq >= :s", {"s": cut}),
        ("DELETE FROM audit_head", {}),
    )
    verdict = await _verify(db, witness)
    assert not verdict.ok and verdict.first_broken_seq == cut
    assert verdict.reason == (
        f"the chain was cut: it ends at record {cut - 1}, "
        f"below the witnessed head at record {witness.seq}"
    )


async def test_deleting_the_tail_under_a_signed_head_is_detected_without_a_witness(
    client, db, people, backend
):
    await _three_alerts(client, people)
    head = await _witness(db)
    await _as_insider(db, backend, ("DELETE FROM audit_record WHERE seq >= :s", {"s": head.seq}))
    verdict = await _verify(db)
    assert not verdict.ok and verdict.first_broken_seq == head.seq
    assert f"below the head signed at record {head.seq}" in verdict.reason


async def test_a_rewritten_and_rechained_record_is_detected(client, db, people, backend):
    await _three_alerts(client, people)
    witness = await _witness(db)
    await post_alert(client, people["focal"], seizure_body())  # the chain grows past the head
    await _as_insider(
        db, backend, ("UPDATE audit_record SET outcome = 'failure' WHERE seq = 3", {})
    )
    await _rechain(db, backend, 3)
    # The signed head in the database no longer matches its record.
    verdict = await _verify(db)
    assert not verdict.ok and verdict.first_broken_seq == witness.seq
    assert "no longer matches its signed head" in verdict.reason
    # With the database's heads gone too, only the witness can tell, and it does.
    await _as_insider(db, backend, ("DELETE FROM audit_head", {}))
    assert (await _verify(db)).ok
    verdict = await _verify(db, witness)
    assert not verdict.ok and verdict.first_broken_seq == witness.seq
    assert verdict.reason == (
        "no longer matches the witnessed head: the chain was rewritten at or before this record"
    )


@pytest.mark.parametrize("claimed_key", ["attacker's", "ours"])
async def test_a_head_re_signed_with_another_key_is_detected(
    client, db, people, backend, claimed_key
):
    await _three_alerts(client, people)
    witness = await _witness(db)
    await _as_insider(db, backend, ("UPDATE audit_record SET action = 'x' WHERE seq = 2", {}))
    await _rechain(db, backend, 2)
    rechained = (await _records_by_seq(db))[witness.seq]
    forged = heads.sign(_foreign_key(), witness.seq, rechained.hash)
    if claimed_key == "ours":  # the forger writes our key id next to their signature
        forged = SignedHead(
            forged.seq, forged.hash, forged.signed_at, witness.key_id, forged.signature
        )
    await _as_insider(
        db,
        backend,
        ("DELETE FROM audit_head", {}),
        (
            "INSERT INTO audit_head (seq, hash, signed_at, key_id, signature) "
            "VALUES (:seq, :hash, :at, :kid, :sig)",
            {
                "seq": forged.seq,
                "hash": forged.hash,
                "at": forged.signed_at.replace(tzinfo=None)
                if backend == "sqlite"
                else forged.signed_at,
                "kid": forged.key_id,
                "sig": forged.signature,
            },
        ),
    )
    kid = heads.key_id(heads.verify_key(db.settings))
    verdict = await _verify(db)
    assert not verdict.ok and verdict.first_broken_seq == witness.seq
    assert verdict.reason == f"its signed head is not signed by the configured key {kid}"
    answer = await client.get("/api/v1/audit/verify", headers=people["operator"].headers)
    assert answer.json()["ok"] is False and answer.json()["first_broken_seq"] == witness.seq
    # A witness file re-signed the same way is refused as well.
    verdict = await _verify(db, forged)
    assert not verdict.ok and verdict.first_broken_seq == witness.seq
    assert verdict.reason == f"the witnessed head is not signed by the configured key {kid}"


async def test_the_worker_refuses_to_sign_over_a_rewritten_chain(
    client, db, people, backend, caplog
):
    await _three_alerts(client, people)
    signer = jobs.head_signer(heads.signing_key(db.settings))
    async with db.session() as session:
        assert await signer(session) == 1
        await session.commit()
    await post_alert(client, people["focal"], seizure_body())
    await _as_insider(db, backend, ("UPDATE audit_record SET outcome = 'x' WHERE seq = 1", {}))
    await _rechain(db, backend, 1)
    await _as_insider(db, backend, ("DELETE FROM audit_head", {}))
    # The database now holds a consistent, rewritten chain and no head; the worker remembers
    # the head it signed, out of the insider's reach, and will not bless the rewrite.
    async with db.session() as session:
        assert await signer(session) == 0
        await session.commit()
    assert "audit head not signed" in caplog.text and "rewritten" in caplog.text
    async with db.session() as session:
        assert (await session.exec(text("SELECT count(*) FROM audit_head"))).one()[0] == 0


async def _records_by_seq(db) -> dict[int, AuditRecord]:
    async with db.session() as session:
        rows = (
            await session.exec(select(AuditRecord).where(col(AuditRecord.seq).is_not(None)))
        ).all()
    return {r.seq: r for r in rows}


def test_the_key_id_names_the_key_not_the_database():
    key = heads.private_key(base64.b64decode(base64.b64encode(secrets.token_bytes(32))))
    head = heads.sign(key, 7, "a" * 64)
    assert head.signed_by(key.public_key())
    assert not head.signed_by(_foreign_key().public_key())
    assert SignedHead.from_json(head.to_json()) == head
