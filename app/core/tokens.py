"""The one place that signs and verifies JWTs (python-jose), with its sharp edges filed off.

python-jose must always be given `algorithms=[...]` (otherwise a public key can be
replayed as an HMAC secret), accepts tokens without `exp`/`aud` unless told, and tries
every key it is given whatever the `kid`. So: the key is picked from our own ring by
the unverified header's `kid`, its algorithm is pinned, every registered claim is
required, and an `iat` in the future is refused here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from app.core.config import JwtKey, Settings
from app.core.types import utcnow

_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not meant for us."""


@dataclass(frozen=True)
class _LoadedKey:
    kid: str
    alg: str
    signing: str | None
    verifying: str


class KeyRing:
    """The configured signing and verification keys, by key id."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_seconds
        self._keys = {key.kid: _load(key) for key in settings.jwt_keys}
        self._active = self._keys[settings.active_jwt_key.kid]

    def sign(self, claims: dict[str, Any], *, ttl: timedelta, now: datetime | None = None) -> str:
        """A JWT with `iss`, `aud`, `iat`, `exp` and `jti` added, signed with the active key."""
        now = now or utcnow()
        body = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": claims.get("jti") or uuid.uuid4().hex,
        }
        key = self._active
        if key.signing is None:
            raise RuntimeError(f"key {key.kid} cannot sign")
        return jwt.encode(body, key.signing, algorithm=key.alg, headers={"kid": key.kid})

    def verify(self, token: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The token's claims, or `InvalidToken` for anything short of a perfect token."""
        try:
            header = jwt.get_unverified_header(token)
        except (JOSEError, UnicodeError) as exc:
            raise InvalidToken("malformed token") from exc
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown key id")
        if header.get("alg") != key.alg:
            raise InvalidToken("unexpected algorithm")
        if any(name in header for name in _FORBIDDEN_HEADERS):
            raise InvalidToken("unsupported token header")
        try:
            claims = jwt.decode(
                token,
                key.verifying,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_sub": True,
                    "require_jti": True,
                    "leeway": self.leeway,
                },
            )
        except (JOSEError, TypeError, ValueError, OverflowError) as exc:
            # jose checks time claims with int(); a signed `"exp": null` raises TypeError.
            raise InvalidToken("invalid token") from exc
        issued_at = claims.get("iat")
        current = (now or utcnow()).timestamp()
        if not isinstance(issued_at, int | float) or issued_at > current + self.leeway:
            raise InvalidToken("token issued in the future")
        return claims


def _load(key: JwtKey) -> _LoadedKey:
    if key.secret is not None:
        secret = key.secret.get_secret_value()
        return _LoadedKey(key.kid, key.alg, secret, secret)
    assert key.public_key_file is not None  # checked by JwtKey
    public = key.public_key_file.read_text()
    private = key.private_key_file.read_text() if key.private_key_file else None
    return _LoadedKey(key.kid, key.alg, private, public)
