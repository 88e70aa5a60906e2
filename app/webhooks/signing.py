"""Standard Webhooks signing: `whsec_` secrets, `v1,` HMAC-SHA256 signatures, headers.

Spec: https://www.standardwebhooks.com — the signed content is `{id}.{timestamp}.{body}`
and the key is the base64-decoded part of the secret after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from secrets import token_bytes

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
# RFC 2104 discourages HMAC keys shorter than the hash output (32 bytes for SHA-256).
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"


def new_webhook_secret() -> str:
    """Return a fresh `whsec_<base64 of 32 random bytes>` secret."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    """Decode a `whsec_…` secret into its HMAC key; ValueError when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value: one space-separated signature per secret."""
    # During rotation both the new and the old secret sign, so either one verifies.
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def message_id(delivery_uuid: uuid.UUID) -> str:
    """Return the `webhook-id` for a delivery: `msg_<hex>`, the same on every retry."""
    return f"msg_{delivery_uuid.hex}"
