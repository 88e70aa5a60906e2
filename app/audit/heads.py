"""Signed heads of the audit chain: the Ed25519 key, the signature, the witness file.

A signed head says "the chain's record `seq` had hash `hash` at `signed_at`". Kept outside
the database (a witness), it lets `verify --against` prove the chain still extends it, so
cutting the tail or rewriting and re-chaining the records is detected. Signatures are
checked with the key from the settings (or its file), never with one read from the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.audit.models import AuditHead, AuditRecord
from app.core.config import Settings
from app.core.config_secrets import decode_key
from app.core.types import utcnow

HEAD_FORMAT = "tracewire-audit-head/1"


class NoAuditKey(Exception):
    """No key to sign or to verify audit heads with is configured here."""


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 signing key of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The key that signs heads here (settings, key file or data directory); None if none."""
    seed = settings.audit_signing_seed()
    return None if seed is None else private_key(seed)


def verify_key(settings: Settings) -> Ed25519PublicKey:
    """The key heads are checked with: the configured public key, else the signing key's."""
    signer = signing_key(settings)
    derived = signer.public_key() if signer else None
    if settings.audit_public_key is not None:
        raw = decode_key(settings.audit_public_key, "TRACEWIRE_AUDIT_PUBLIC_KEY")
        configured = Ed25519PublicKey.from_public_bytes(raw)
        if derived is not None and key_id(derived) != key_id(configured):
            raise NoAuditKey("TRACEWIRE_AUDIT_PUBLIC_KEY is not the signing key's public key")
        return configured
    if derived is None:
        raise NoAuditKey("no audit key: set TRACEWIRE_AUDIT_SIGNING_KEY(_FILE) or _PUBLIC_KEY")
    return derived


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as TRACEWIRE_AUDIT_PUBLIC_KEY takes it (base64 of the raw 32 bytes)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class SignedHead:
    """The chain's record `seq` had `hash` at `signed_at`, signed by key `key_id`."""

    seq: int
    hash: str
    signed_at: datetime
    key_id: str
    signature: str

    def message(self) -> bytes:
        """The exact bytes signed."""
        at = self.signed_at.isoformat(timespec="microseconds")
        return f"{HEAD_FORMAT}\n{self.seq}\n{self.hash}\n{at}\n{self.key_id}".encode()

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        """Whether `key` (and no other) made this signature."""
        if self.key_id != key_id(key):
            return False
        try:
            key.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True

    def to_json(self) -> str:
        """The witness file's content."""
        return json.dumps(
            {
                "format": HEAD_FORMAT,
                "seq": self.seq,
                "hash": self.hash,
                "signed_at": self.signed_at.isoformat(timespec="microseconds"),
                "key_id": self.key_id,
                "signature": self.signature,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> SignedHead:
        """Parse a witness file; ValueError if it is not one."""
        try:
            data = json.loads(text)
            if data.get("format") != HEAD_FORMAT:
                raise ValueError(f"not a {HEAD_FORMAT} document")
            head = cls(
                seq=int(data["seq"]),
                hash=str(data["hash"]),
                signed_at=datetime.fromisoformat(data["signed_at"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a signed audit head: {exc}") from exc
        if head.seq < 1 or head.signed_at.tzinfo is None:
            raise ValueError("not a signed audit head: bad seq or signed_at")
        return head

    @classmethod
    def from_row(cls, row: AuditHead) -> SignedHead:
        """The head as stored in `audit_head`."""
        return cls(row.seq, row.hash, row.signed_at, row.key_id, row.signature)

    def to_row(self) -> AuditHead:
        """The `audit_head` row of this head."""
        return AuditHead(
            seq=self.seq,
            hash=self.hash,
            signed_at=self.signed_at,
            key_id=self.key_id,
            signature=self.signature,
        )


def sign(key: Ed25519PrivateKey, seq: int, hash_: str, at: datetime | None = None) -> SignedHead:
    """Sign that record `seq` has `hash_`, now (or at `at`)."""
    unsigned = SignedHead(seq, hash_, at or utcnow(), key_id(key.public_key()), "")
    signature = base64.b64encode(key.sign(unsigned.message())).decode()
    return SignedHead(seq, hash_, unsigned.signed_at, unsigned.key_id, signature)


REWRITTEN = "no longer matches {which}: the chain was rewritten at or before this record"


def head_fault(
    row: AuditRecord,
    head: SignedHead | None,
    key: Ed25519PublicKey | None,
    kid: str | None,
    against: SignedHead | None,
) -> str | None:
    """Why a record contradicts its signed head or the witnessed head, or None."""
    if head is not None and key is not None:
        if not head.signed_by(key):
            return f"its signed head is not signed by the configured key {kid}"
        if head.hash != row.hash:
            return REWRITTEN.format(which="its signed head")
    if against is not None and row.seq == against.seq and row.hash != against.hash:
        return REWRITTEN.format(which="the witnessed head")
    return None
