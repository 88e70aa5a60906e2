"""The one settings class: every knob is read here, from `TRACEWIRE_*` variables."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets that look like the examples in the source and docs: refused in every environment
# (a published value signs tokens anybody can forge).
PLACEHOLDER_MARKERS = ("change-me", "changeme", "changethis", "dev-only", "placeholder")
# Generated into the data directory on first start when the settings name none.
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
AUDIT_KEY_FILE = "audit-signing-key"

JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256"]


class JwtKey(BaseModel):
    """One entry of the JWT key ring: a key id, its pinned algorithm and its material."""

    kid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    alg: JwtAlgorithm = "HS256"
    secret: SecretStr | None = None
    private_key_file: Path | None = None
    public_key_file: Path | None = None

    @model_validator(mode="after")
    def _check_material(self) -> JwtKey:
        if self.alg.startswith("HS"):
            if self.secret is None:
                raise ValueError(f"key {self.kid}: {self.alg} needs `secret`")
            if len(self.secret.get_secret_value().encode()) < 32:
                raise ValueError(f"key {self.kid}: HMAC secrets must be at least 32 bytes")
        elif self.public_key_file is None:
            raise ValueError(f"key {self.kid}: {self.alg} needs `public_key_file`")
        return self


class Settings(BaseSettings):
    """Tracewire configuration; see the table in README.md."""

    model_config = SettingsConfigDict(env_prefix="TRACEWIRE_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    # Where generated secrets live (JWT secret, audit signing key), mode 0700/0600.
    data_dir: Path = Path("data")
    database_url: str = "sqlite+aiosqlite:///./tracewire.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_echo: bool = False

    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    jwt_issuer: str = "tracewire"
    jwt_audience: str = "tracewire-api"
    jwt_keys: Annotated[list[JwtKey], NoDecode] = Field(default_factory=list)
    jwt_active_kid: str | None = None
    jwt_secret: SecretStr | None = None  # shorthand for a one-key HS256 ring
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=300)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # argon2id, OWASP's recommendation: m = 19 MiB, t = 2, p = 1.
    password_hash_memory_kib: int = Field(default=19456, ge=8)
    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_parallelism: int = Field(default=1, ge=1)
    password_min_length: int = Field(default=12, ge=8)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Transport and abuse limits (app/core/hardening.py).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(default=1200, ge=0)
    token_rate_limit_per_minute: int = Field(default=20, ge=0)

    # Failed password logins per typed username: this many are free, then a doubling wait.
    login_max_failures: int = Field(default=5, ge=1)
    login_backoff_base_seconds: int = Field(default=30, ge=1)
    login_backoff_max_seconds: int = Field(default=900, ge=1)

    # Web console sessions: idle timeout, absolute lifetime, and the cookie's Secure flag
    # (None: Secure when the request came over https, directly or via a trusted proxy).
    console_idle_timeout_seconds: int = Field(default=1800, ge=60)
    console_session_lifetime_seconds: int = Field(default=12 * 3600, ge=300)
    console_cookie_secure: bool | None = None

    # Default trace-request deadlines, in days (a design choice; the ITI sets none).
    trace_routine_ack_days: int = Field(default=5, ge=1)
    trace_routine_response_days: int = Field(default=30, ge=1)
    trace_urgent_ack_days: int = Field(default=1, ge=1)
    trace_urgent_response_days: int = Field(default=3, ge=1)

    # The Ed25519 key that signs the audit chain's head: its base64 32-byte seed, here or in
    # a file (required in prod); elsewhere, without either, generated into `data_dir`.
    audit_signing_key: SecretStr | None = None
    audit_signing_key_file: Path | None = None
    # For a host that only verifies (an auditor's): the base64 raw 32-byte public key.
    audit_public_key: str | None = None
    audit_sign_every_seconds: float = Field(default=300.0, gt=0)

    # Webhooks.
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs subscribers may resolve to although not public (tests: 127.0.0.1/32).",
    )
    webhook_require_https: bool | None = None  # None: required outside `dev`
    webhook_secret_overlap_seconds: int = Field(default=86400, ge=0)
    webhook_connect_timeout: float = Field(default=5.0, gt=0)
    webhook_read_timeout: float = Field(default=10.0, gt=0)
    webhook_max_response_bytes: int = Field(default=65536, ge=1024)
    webhook_concurrency: int = Field(default=64, ge=1)
    webhook_concurrency_per_subscription: int = Field(default=8, ge=1)
    webhook_lease_seconds: int = Field(default=60, ge=5)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_disable_after_failures: int = Field(default=50, ge=1)
    # Seconds to wait before each retry (then `failed`): about 5 s, 5 min, 30 min, 2 h, 5 h,
    # 10 h, 10 h, with up to 20 % jitter.
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000]
    )

    # None = automatic: `serve` runs the worker in-process on SQLite only.
    worker_in_process: bool | None = None

    @field_validator(
        "webhook_allow_networks",
        "webhook_retry_schedule",
        "trusted_proxies",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _check_audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value(), "audit_signing_key")
        return value

    @field_validator("audit_public_key")
    @classmethod
    def _check_audit_public_key(cls, value: str | None) -> str | None:
        if value is not None:
            decode_key(value, "audit_public_key")
        return value

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.jwt_keys:
            secret = self.jwt_secret
            if secret is None:
                if self.environment == "prod":
                    raise ValueError(
                        "TRACEWIRE_JWT_SECRET or TRACEWIRE_JWT_KEYS is required in prod"
                    )
                secret = SecretStr(
                    read_or_create_secret(
                        self.data_dir / JWT_SECRET_FILE, lambda: secrets.token_urlsafe(48)
                    )
                )
            self.jwt_keys = [JwtKey(kid="default", alg="HS256", secret=secret)]
        kids = [k.kid for k in self.jwt_keys]
        if len(set(kids)) != len(kids):
            raise ValueError("jwt_keys: key ids must be unique")
        if self.jwt_active_kid is None:
            self.jwt_active_kid = kids[0]
        active = self.active_jwt_key
        if active.alg[:2] in ("RS", "ES") and active.private_key_file is None:
            raise ValueError(f"jwt_active_kid {active.kid}: signing needs `private_key_file`")
        for key in self.jwt_keys:
            if key.secret is not None and _is_placeholder(key.secret.get_secret_value()):
                raise ValueError(
                    f"jwt key {key.kid}: placeholder secret refused; set TRACEWIRE_JWT_SECRET "
                    "or TRACEWIRE_JWT_KEYS to a random value, or unset both (outside prod) to "
                    f"have one generated into {self.data_dir / JWT_SECRET_FILE}"
                )
        if (
            self.environment == "prod"
            and self.audit_signing_key is None
            and self.audit_signing_key_file is None
        ):
            raise ValueError(
                "TRACEWIRE_AUDIT_SIGNING_KEY or TRACEWIRE_AUDIT_SIGNING_KEY_FILE is required "
                "in prod"
            )
        return self

    def audit_signing_seed(self) -> bytes | None:
        """The audit head key's 32-byte seed: settings, its file, or generated (not in prod)."""
        if self.audit_signing_key is not None:
            return decode_key(self.audit_signing_key.get_secret_value(), "audit_signing_key")
        if self.audit_signing_key_file is not None:
            path = self.audit_signing_key_file
            return decode_key(read_secret_file(path), str(path))
        if self.environment == "prod" or self.audit_public_key is not None:
            return None  # a verifying host: it signs nothing
        seed = read_or_create_secret(
            self.data_dir / AUDIT_KEY_FILE, lambda: base64.b64encode(os.urandom(32)).decode()
        )
        return decode_key(seed, str(self.data_dir / AUDIT_KEY_FILE))

    @property
    def active_jwt_key(self) -> JwtKey:
        """The key new tokens are signed with."""
        for key in self.jwt_keys:
            if key.kid == self.jwt_active_kid:
                return key
        raise ValueError(f"jwt_active_kid {self.jwt_active_kid!r} is not in jwt_keys")

    @property
    def runs_worker_in_process(self) -> bool:
        """Whether `serve` should also run the background worker."""
        return self.is_sqlite if self.worker_in_process is None else self.worker_in_process

    @property
    def webhooks_need_https(self) -> bool:
        """Whether subscriber URLs must be https."""
        if self.webhook_require_https is None:
            return self.environment != "dev"
        return self.webhook_require_https

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def decode_key(value: str, name: str) -> bytes:
    """A base64 32-byte Ed25519 key (seed or public key), or ValueError naming `name`."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise ValueError(f"{name} must be base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{name} must decode to 32 bytes (an Ed25519 key)")
    return raw


def read_secret_file(path: Path) -> str:
    """A secret kept in a file (surrounding whitespace dropped); never empty."""
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def read_or_create_secret(path: Path, generate: Callable[[], str]) -> str:
    """The secret in `path`, which is created (mode 0600) from `generate()` if missing.

    Several processes may start at once: the file is written under another name and linked
    into place, so a reader sees either no file or the whole of the one that won.
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(generate() + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its
                os.link(scratch, path)
        finally:
            scratch.unlink()
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
    return read_secret_file(path)


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()
