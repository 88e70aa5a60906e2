"""Passkeys (WebAuthn): registering a user's authenticator, and logging in with it.

The relying party is the console's public address (`public_url`; `webauthn_rp_id` may name
a parent domain). Every ceremony is checked by the `webauthn` package: the challenge we
issued, the origin, the RP ID hash, user presence and user verification, and the
signature with the stored public key. A challenge travels in a short signed cookie and is
spent once (its `jti` is recorded like a revoked token's). A passkey login with user
verification is itself two factors, so it satisfies an MFA rule.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

import webauthn
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.agencies.models import User
from app.audit import service as audit
from app.auth import principals
from app.auth.context import ErrorAfterCommit
from app.auth.models import RevokedToken, WebAuthnCredential
from app.authz.principal import Principal
from app.core.config import Settings
from app.core.errors import AppError, InvalidInput, NotFound
from app.core.tokens import InvalidToken, KeyRing

CHALLENGE_TTL = timedelta(minutes=5)


class PasskeyRefused(AppError):
    """A ceremony that did not verify; the answer says no more than that."""

    status, slug, title = 400, "passkey-refused", "Passkey refused"


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origin: str


def relying_party(settings: Settings) -> RelyingParty:
    """The RP ID and the origin browsers report, from the console's public address."""
    parts = urlsplit(settings.public_url)
    return RelyingParty(
        id=settings.webauthn_rp_id or parts.hostname or "localhost",
        name=settings.mfa_issuer,
        origin=f"{parts.scheme}://{parts.netloc}",
    )


def _challenge_cookie(
    keys: KeyRing, now: datetime, purpose: str, challenge: bytes, user_id: uuid.UUID | None
) -> str:
    claims = {
        "typ": "webauthn",
        "purpose": purpose,
        "ch": bytes_to_base64url(challenge),
        "sub": str(user_id) if user_id else "-",
    }
    return keys.sign(claims, ttl=CHALLENGE_TTL, now=now)


async def _spend_challenge(
    session: AsyncSession,
    keys: KeyRing,
    now: datetime,
    cookie: str | None,
    purpose: str,
    user_id: uuid.UUID | None,
) -> bytes:
    """The challenge a cookie carries, spent now; PasskeyRefused if it is not one we issued
    for this purpose (and user), has expired or was spent before."""
    refused = PasskeyRefused("The passkey request expired or was not started here; try again.")
    if not cookie or len(cookie) > 4096:
        raise refused
    try:
        claims = keys.verify(cookie, now=now)
    except InvalidToken as exc:
        raise refused from exc
    expected_sub = str(user_id) if user_id else "-"
    if (
        claims.get("typ") != "webauthn"
        or claims.get("purpose") != purpose
        or claims.get("sub") != expected_sub
    ):
        raise refused
    # Spent by inserting its id: of two uses racing, one inserts and the other finds it.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    spent = await session.exec(
        insert(RevokedToken)
        .values(jti=str(claims["jti"]), expires_at=now + CHALLENGE_TTL)
        .on_conflict_do_nothing(index_elements=["jti"])
    )
    if spent.rowcount != 1:
        raise refused
    return webauthn.base64url_to_bytes(str(claims["ch"]))


async def registration_options(
    session: AsyncSession, settings: Settings, keys: KeyRing, now: datetime, user: User
) -> tuple[dict[str, Any], str]:
    """Options for `navigator.credentials.create` (JSON) and the challenge cookie."""
    rp = relying_party(settings)
    existing = await _credentials(session, user.id)
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user.id.bytes,
        user_name=user.email,
        user_display_name=user.full_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(c.credential_id))
            for c in existing
        ],
    )
    cookie = _challenge_cookie(keys, now, "register", options.challenge, user.id)
    return json.loads(webauthn.options_to_json(options)), cookie


async def register(
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    now: datetime,
    *,
    user: User,
    actor: Principal,
    cookie: str | None,
    credential: dict[str, Any],
    name: str,
) -> WebAuthnCredential:
    """Check a new credential against the challenge we issued this user, then keep it."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput.on("name", "must be 1 to 100 characters")
    challenge = await _spend_challenge(session, keys, now, cookie, "register", user.id)
    rp = relying_party(settings)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except (
        InvalidRegistrationResponse,
        InvalidJSONStructure,
        ValueError,
        KeyError,
        TypeError,
    ) as exc:
        raise PasskeyRefused("The authenticator's answer did not verify.") from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    taken = await session.exec(
        select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == credential_id)
    )
    if taken.first() is not None:
        raise PasskeyRefused("This passkey is already registered.")
    response = credential.get("response")
    transports = (response.get("transports") if isinstance(response, dict) else None) or []
    if not isinstance(transports, list):
        transports = []
    row = WebAuthnCredential(
        user_id=user.id,
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=" ".join(str(t) for t in transports if isinstance(t, str))[:200],
        name=name,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session, actor, "passkey.add", object_type="user", object_id=user.id,
        details={"passkey": str(row.id), "name": name},
    )  # fmt: skip
    return row


def authentication_options(
    settings: Settings, keys: KeyRing, now: datetime
) -> tuple[dict[str, Any], str]:
    """Options for `navigator.credentials.get` (any of the user's discoverable passkeys)."""
    options = webauthn.generate_authentication_options(
        rp_id=relying_party(settings).id,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    cookie = _challenge_cookie(keys, now, "login", options.challenge, None)
    return json.loads(webauthn.options_to_json(options)), cookie


async def authenticate(
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    now: datetime,
    *,
    cookie: str | None,
    credential: dict[str, Any],
) -> User:
    """The live user whose passkey signed our challenge; PasskeyRefused (audited) otherwise."""
    challenge = await _spend_challenge(session, keys, now, cookie, "login", None)
    raw_id = credential.get("rawId") or credential.get("id")
    stored = None
    if isinstance(raw_id, str) and len(raw_id) <= 1400:
        stored = (
            await session.exec(
                select(WebAuthnCredential).where(WebAuthnCredential.credential_id == raw_id)
            )
        ).first()
    if stored is None:
        await _refused(session, None, "unknown passkey")
    response = credential.get("response")
    if not isinstance(response, dict):
        await _refused(session, stored, "malformed answer")
    handle = response.get("userHandle")
    if handle and handle != bytes_to_base64url(stored.user_id.bytes):
        await _refused(session, stored, "user handle of another account")
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=relying_party(settings).id,
            expected_origin=relying_party(settings).origin,
            credential_public_key=webauthn.base64url_to_bytes(stored.public_key),
            credential_current_sign_count=stored.sign_count,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, InvalidJSONStructure, ValueError, KeyError, TypeError):
        await _refused(session, stored, "signature or flags did not verify")
    user = await principals.live_user(session, stored.user_id)
    if user is None:
        await _refused(session, stored, "account may not log in")
    stored.sign_count = verified.new_sign_count
    stored.last_used_at = now
    session.add(stored)
    await session.flush()
    return user


async def _refused(session: AsyncSession, stored: WebAuthnCredential | None, why: str) -> NoReturn:
    await audit.record(
        session, None, "auth.login", object_type="user",
        object_id=stored.user_id if stored else None, outcome="failure",
        actor_name="passkey holder", details={"grant": "passkey", "reason": why},
    )  # fmt: skip
    raise ErrorAfterCommit(PasskeyRefused("This passkey cannot log in here."))


async def _credentials(session: AsyncSession, user_id: uuid.UUID) -> list[WebAuthnCredential]:
    rows = await session.exec(
        select(WebAuthnCredential)
        .where(WebAuthnCredential.user_id == user_id)
        .order_by(WebAuthnCredential.created_at)  # type: ignore[arg-type]
    )
    return list(rows.all())


async def list_passkeys(session: AsyncSession, user: User) -> list[WebAuthnCredential]:
    """The user's passkeys, oldest first."""
    return await _credentials(session, user.id)


async def remove(
    session: AsyncSession, user: User, actor: Principal, passkey_id: uuid.UUID
) -> None:
    """Remove one of the user's passkeys (another user's id is a 404)."""
    row = await session.get(WebAuthnCredential, passkey_id)
    if row is None or row.user_id != user.id:
        raise NotFound("No such passkey.")
    await session.delete(row)
    await session.flush()
    await audit.record(
        session, actor, "passkey.remove", object_type="user", object_id=user.id,
        details={"passkey": str(passkey_id)},
    )  # fmt: skip


async def forget_all(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Remove every passkey of a user: after a password reset or a second-factor reset by an
    administrator (a suspected compromise, a lost device), none planted before may log in."""
    await session.exec(delete(WebAuthnCredential).where(col(WebAuthnCredential.user_id) == user_id))
    await session.flush()
