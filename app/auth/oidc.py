"""OpenID Connect, the relying party's side: discovery, the authorization request (code flow
with PKCE S256, `state` and `nonce`), the code exchange and the ID token's checks.

The ID token is believed only after: its signature verifies with a key of the provider's
published key set (chosen by `kid`), under an asymmetric algorithm of our list (never
`none`, never an HMAC keyed with the client secret); `iss` is the configured issuer
exactly; `aud` contains our client id and, when it names others, `azp` is our client id;
`nonce` is the one this login sent; `exp`, `iat` (not in the future) and `nbf` hold within
the leeway. Nothing here touches the database.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.auth.oidc_fetch import FetchFailed, ProviderHttp

# Asymmetric signatures only: an HS256 ID token would be keyed with the client secret,
# which the agency's administrators also hold.
ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
SCOPE = "openid email profile"
# Headers that would make a verifier fetch or trust a key named by the token itself.
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")


class SsoRefused(Exception):
    """A single sign-on login that cannot go on: `reason` is a short code for the audit
    trail (never a token or a secret), `message` what the person is told."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message or (
            "Your agency's single sign-on could not log you in. Try again, or log in with "
            "your password; if it keeps failing, tell your agency's administrators."
        )


@dataclass(frozen=True)
class Endpoints:
    """What the provider's discovery document says, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where the browser goes, and the secrets this login keeps until the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def discovery_url(issuer: str) -> str:
    """The issuer's discovery document (OpenID Connect Discovery 1.0, §4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def discover(http: ProviderHttp, issuer: str) -> Endpoints:
    """The provider's endpoints, from its own discovery document; SsoRefused if unusable."""
    try:
        doc = await http.get_json(discovery_url(issuer))
    except FetchFailed as exc:
        raise SsoRefused(f"discovery failed: {exc.reason}") from None
    if doc.get("issuer") != issuer:
        # Discovery §4.3: the document's issuer is exactly the one it was fetched for.
        raise SsoRefused("discovery names another issuer")
    found: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or len(value) > 2000:
            raise SsoRefused(f"discovery has no usable {name}")
        try:
            http.check_syntax(value)
        except FetchFailed as exc:
            raise SsoRefused(f"discovery {name}: {exc.reason}") from None
        found[name] = value
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SsoRefused("provider does not support PKCE S256")
    return Endpoints(issuer=issuer, **found)


def authorization_request(
    endpoints: Endpoints, *, client_id: str, redirect_uri: str, login_hint: str
) -> AuthorizationRequest:
    """The authorization request of the code flow, with PKCE S256, `state` and `nonce`."""
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", create_s256_code_challenge(verifier)),
        ("code_challenge_method", "S256"),
        ("login_hint", login_hint),
    ]
    url = add_params_to_uri(endpoints.authorization_endpoint, params)
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)


@dataclass(frozen=True)
class Tokens:
    """The token endpoint's answer: the ID token, and the access token (for `at_hash`)."""

    id_token: str
    access_token: str | None


async def exchange_code(
    http: ProviderHttp,
    endpoints: Endpoints,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> Tokens:
    """Trade the authorization code for tokens (client_secret_basic, the default of RFC 6749
    §2.3.1 and of OpenID Connect, with the PKCE verifier)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    try:
        answer = await http.post_form(endpoints.token_endpoint, form, authorization=authorization)
    except FetchFailed as exc:
        raise SsoRefused(f"token request failed: {exc.reason}") from None
    error = answer.get("error")
    if error is not None:
        # The provider's error code only: its description may quote what we sent.
        raise SsoRefused(f"token request refused: {str(error)[:60]}")
    id_token = answer.get("id_token")
    access_token = answer.get("access_token")
    if not isinstance(id_token, str) or not id_token:
        raise SsoRefused("token answer has no id_token")
    return Tokens(id_token, access_token if isinstance(access_token, str) else None)


async def verify_id_token(
    http: ProviderHttp,
    endpoints: Endpoints,
    tokens: Tokens,
    *,
    client_id: str,
    nonce: str,
    now: datetime,
    leeway: int,
) -> dict[str, Any]:
    """The ID token's claims once every check has passed; SsoRefused naming the first that
    failed."""
    try:
        jwks = await http.get_json(endpoints.jwks_uri)
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except FetchFailed as exc:
        raise SsoRefused(f"key set fetch failed: {exc.reason}") from None
    except (JoseError, ValueError, TypeError, KeyError):
        raise SsoRefused("provider's key set is unreadable") from None
    try:
        token = jwt.decode(tokens.id_token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise SsoRefused(f"id_token signature: {exc.error}") from None
    except (ValueError, TypeError):
        raise SsoRefused("id_token is malformed") from None
    if any(name in token.header for name in _FORBIDDEN_HEADERS):
        raise SsoRefused("id_token header names its own key")
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": endpoints.issuer},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": tokens.access_token},
    )
    try:
        claims.validate(now=int(now.timestamp()), leeway=leeway)
    except JoseError as exc:
        raise SsoRefused(f"id_token claims: {exc.error} {exc.description or ''}".strip()) from None
    except (ValueError, TypeError):
        raise SsoRefused("id_token claims are malformed") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise SsoRefused("id_token sub is not usable")
    return dict(claims)
