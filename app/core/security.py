"""Password hashing (argon2id) and high-entropy secrets (API clients, refresh tokens)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.config import Settings


class PasswordHashing:
    """argon2id with the configured cost; verifies in constant time for unknown accounts too."""

    def __init__(self, settings: Settings) -> None:
        self.min_length = settings.password_min_length
        self._hasher = PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
            type=Type.ID,
        )
        # Verified against when the account does not exist, so timing does not tell.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """An argon2id hash of the password."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether the password matches; with no stored hash, burn the same time and say no."""
        if stored_hash is None:
            try:
                self._hasher.verify(self._dummy_hash, password)
            except VerificationError:
                pass
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored_hash)


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A random secret with a recognisable prefix (helps secret scanners)."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def digest_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret.

    Client secrets and refresh tokens carry 256 random bits, so a fast hash is enough:
    slow hashing protects guessable passwords, not random keys.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
