"""The principal look-ups built once at import (app/auth/principals.py) bind each
request's own user, login and token id; a revoked token stays refused, interleaved with
other principals' requests on the same statements."""

from __future__ import annotations

import asyncio

from tests.factories import bearer, client_login, make_client

ME = "/api/v1/alerts"


async def test_a_revoked_client_token_is_refused_while_its_sibling_is_not(client, db, world):
    api, secret = await make_client(db, world["KE"].agency)
    first = (await client_login(client, api.id, secret))["access_token"]
    second = (await client_login(client, api.id, secret))["access_token"]
    revoked = await client.post("/api/v1/auth/revoke", data={"token": first})
    assert revoked.status_code == 200, revoked.text
    # Interleaved with other principals' look-ups on the same prebuilt statements.
    answers = await asyncio.gather(
        *(
            client.get(ME, headers=h)
            for h in [bearer(first), world["DE"].headers, bearer(second), bearer(first)] * 3
        )
    )
    assert [a.status_code for a in answers] == [401, 200, 200, 401] * 3


async def test_a_revoked_user_token_is_refused_and_others_are_not(client, world):
    token = world["JO"].headers["Authorization"].removeprefix("Bearer ")
    revoked = await client.post("/api/v1/auth/revoke", data={"token": token})
    assert revoked.status_code == 200, revoked.text
    answers = await asyncio.gather(
        *(client.get(ME, headers=a.headers) for a in [world["JO"], world["KE"]] * 3)
    )
    assert [a.status_code for a in answers] == [401, 200] * 3
