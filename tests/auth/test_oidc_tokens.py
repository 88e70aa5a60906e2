"""The ID token checks (app/auth/oidc.py) on tokens the real provider issued: to another
client (`aud`), checked against another issuer, altered; and the SSRF rule on the
provider's address. The provider runs as in tests/auth/test_oidc.py."""

from __future__ import annotations

import base64
import json

import pytest

from app.auth import oidc
from app.auth.oidc_fetch import FetchFailed, ProviderHttp
from app.core.types import utcnow
from tests.conftest import settings_for
from tests.oidc.provider import running, tokens_for


@pytest.fixture
def idp(tmp_path):
    with running(tmp_path) as provider:
        provider.add_account("sub-amina", email="amina@kenya-police.example")
        yield provider


@pytest.fixture
def http(db_url, idp):
    settings = settings_for(
        db_url, oidc_allow_networks=[f"127.0.0.1:{idp.port}"], oidc_require_https=False
    )
    return ProviderHttp(settings)


async def check(http, idp, tokens, *, client_id="tracewire", nonce=None, issuer=None):
    endpoints = await oidc.discover(http, idp.issuer)
    if issuer:
        endpoints = oidc.Endpoints(
            issuer=issuer,
            authorization_endpoint=endpoints.authorization_endpoint,
            token_endpoint=endpoints.token_endpoint,
            jwks_uri=endpoints.jwks_uri,
        )
    return await oidc.verify_id_token(
        http,
        endpoints,
        oidc.Tokens(tokens.id_token, tokens.access_token),
        client_id=client_id,
        nonce=nonce or tokens.nonce,
        now=utcnow(),
        leeway=30,
    )


async def test_a_token_of_our_client_passes_every_check(http, idp):
    tokens = await tokens_for(idp, "tracewire", "sub-amina")
    claims = await check(http, idp, tokens)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (idp.issuer, "sub-amina", "tracewire")
    assert claims["email"] == "amina@kenya-police.example"


async def test_a_token_issued_to_another_client_is_refused(http, idp):
    tokens = await tokens_for(idp, "other", "sub-amina")
    with pytest.raises(oidc.SsoRefused, match="aud"):
        await check(http, idp, tokens)
    assert await check(http, idp, tokens, client_id="other")  # the same token, its own client


async def test_a_token_of_an_unknown_issuer_is_refused(http, idp):
    tokens = await tokens_for(idp, "tracewire", "sub-amina")
    with pytest.raises(oidc.SsoRefused, match="iss"):
        await check(http, idp, tokens, issuer="https://login.other-agency.example")


async def test_a_token_for_another_nonce_is_refused(http, idp):
    tokens = await tokens_for(idp, "tracewire", "sub-amina")
    with pytest.raises(oidc.SsoRefused, match="nonce"):
        await check(http, idp, tokens, nonce="not-this-login")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_an_altered_or_unsigned_token_is_refused(http, idp):
    tokens = await tokens_for(idp, "tracewire", "sub-amina")
    header, payload, signature = tokens.id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    altered = f"{header}.{_b64(claims | {'sub': 'someone-else'})}.{signature}"
    unsigned = f"{_b64({'alg': 'none'})}.{payload}."
    for forged in (altered, unsigned):
        with pytest.raises(oidc.SsoRefused, match="signature"):
            await check(http, idp, type(tokens)(forged, None, tokens.nonce))


async def test_a_provider_address_not_allow_listed_is_refused(db_url, idp):
    closed = ProviderHttp(settings_for(db_url, oidc_require_https=False))
    with pytest.raises(oidc.SsoRefused, match="refused address"):
        await oidc.discover(closed, idp.issuer)
    strict = ProviderHttp(settings_for(db_url, oidc_allow_networks=[f"127.0.0.1:{idp.port}"]))
    with pytest.raises(FetchFailed, match="https"):
        await strict.get_json(idp.issuer + "/jwks")
