"""Plain factory functions: rows straight into the database, and logins through the API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from app.agencies.models import Agency, AgencyStatus, AgencyType, ApiClient, User
from app.authz.principal import Role
from app.core.db import Database
from app.core.security import PasswordHashing, digest_secret, new_secret
from tests.conftest import random_email
from tests.secrets_seen import remember

PASSWORD = "correct horse battery staple"


async def make_agency(
    db: Database,
    *,
    name: str | None = None,
    country: str = "KE",
    type_: AgencyType = AgencyType.police,
    status: AgencyStatus = AgencyStatus.active,
) -> Agency:
    """An agency, committed."""
    agency = Agency(
        name=name or f"Agency {uuid.uuid4().hex[:8]}", country=country, type=type_, status=status
    )
    async with db.session() as session:
        session.add(agency)
        await session.commit()
    return agency


async def make_user(
    db: Database,
    hashing: PasswordHashing,
    agency: Agency,
    role: Role = Role.reader,
    *,
    email: str | None = None,
    password: str = PASSWORD,
) -> User:
    """A user of `agency`, committed."""
    user = User(
        agency_id=agency.id,
        email=(email or random_email(role.value)).lower(),
        full_name=f"{role.value} of {agency.name}",
        role=role,
        password_hash=hashing.hash(password),
    )
    async with db.session() as session:
        session.add(user)
        await session.commit()
    return user


async def make_client(
    db: Database, agency: Agency, scopes: str = "alerts:read"
) -> tuple[ApiClient, str]:
    """An API client of `agency` and its secret, committed."""
    secret = new_secret("tws_")
    client = ApiClient(
        agency_id=agency.id,
        name=f"client {uuid.uuid4().hex[:6]}",
        scopes=scopes,
        secret_hash=digest_secret(secret),
        secret_hint=secret[:8],
    )
    async with db.session() as session:
        session.add(client)
        await session.commit()
    remember(secret)
    return client, secret


async def password_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    """The token answer of a password grant (asserting it succeeded)."""
    response = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert response.status_code == 200, response.text
    remember(password, response.json()["access_token"], response.json().get("refresh_token"))
    return response.json()


async def client_login(client: httpx.AsyncClient, client_id: uuid.UUID, secret: str) -> dict:
    """The token answer of a client-credentials grant (asserting it succeeded)."""
    response = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(str(client_id), secret),
    )
    assert response.status_code == 200, response.text
    remember(secret, response.json()["access_token"])
    return response.json()


def bearer(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Actor:
    """A logged-in principal: who it is and the headers that prove it."""

    agency: Agency
    headers: dict[str, str]
    user: User | None = None
    api_client: ApiClient | None = None


async def make_actor(
    client: httpx.AsyncClient,
    db: Database,
    hashing: PasswordHashing,
    agency: Agency,
    role: Role,
) -> Actor:
    """A user of `role` in `agency`, logged in through the token endpoint."""
    user = await make_user(db, hashing, agency, role)
    tokens = await password_login(client, user.email)
    return Actor(agency=agency, user=user, headers=bearer(tokens["access_token"]))


# How make_world names an agency's actor of each role: "KE", "KE_admin", "KE_reader".
ROLE_SUFFIX = {Role.focal_point: "", Role.agency_admin: "_admin", Role.reader: "_reader"}


async def make_world(
    client: httpx.AsyncClient,
    db: Database,
    hashing: PasswordHashing,
    roles: Sequence[Role] = (Role.focal_point, Role.agency_admin),
    countries: Sequence[str] = ("KE", "DE", "JO"),
) -> dict[str, Actor]:
    """One agency per country, a logged-in actor of each role in it, keyed by ROLE_SUFFIX.

    Agencies and actors are made in the order given, so that modules sharing a world see
    the same rows as when each built its own.
    """
    world: dict[str, Actor] = {}
    for country in countries:
        agency = await make_agency(db, country=country)
        for role in roles:
            world[country + ROLE_SUFFIX[role]] = await make_actor(client, db, hashing, agency, role)
    return world


def seizure_body(**overrides: object) -> dict:
    """A realistic seized-weapon alert body (two serialised items)."""
    body: dict = {
        "kind": "seized_weapon",
        "title": "Two rifles seized at the Busia border crossing",
        "summary": "Concealed in a lorry carrying maize; driver arrested.",
        "country": "KE",
        "occurred_at": "2026-11-20T08:30:00Z",
        "location": {"text": "Busia one-stop border post", "lat": 0.4608, "lon": 34.1115},
        "tags": ["border", "rifles"],
        "items": [
            {
                "category": "small_arm",
                "make": "Kalashnikov Concern",
                "model": "AKM",
                "calibre": "7.62x39mm",
                "type": "assault rifle",
                "country_of_manufacture": "RU",
                "serial_raw": "АК 47-1234",
                "markings": [{"text": "АК", "script": "Cyrl", "transliteration": "AK"}],
            },
            {
                "category": "small_arm",
                "make": "Zastava",
                "model": "M70",
                "calibre": "7.62x39mm",
                "serial_raw": "M70-99812",
            },
        ],
        "details": {
            "seizure_place": "Busia",
            "circumstances": "Routine inspection",
            "illicit_basis": ["illegal_under_national_law"],
        },
        "handling": {"tlp": "green", "audience": "community"},
    }
    body.update(overrides)
    return body


async def post_alert(
    client: httpx.AsyncClient, actor: Actor, body: dict, *, publish: bool = True
) -> dict:
    """Post an alert as `actor` (asserting 201) and return it."""
    response = await client.post(
        "/api/v1/alerts", json={**body, "publish": publish}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def trace_body(addressee: Agency, **overrides: object) -> dict:
    """A realistic trace request addressed to `addressee`."""
    body: dict = {
        "kind": "trace_request",
        "title": "Trace of an AKM rifle seized at Busia",
        "country": "KE",
        "items": [
            {
                "category": "small_arm",
                "make": "Zastava",
                "model": "M70",
                "calibre": "7.62x39mm",
                "serial_raw": "M70-99812",
                "country_of_manufacture": "RS",
            }
        ],
        "details": {
            "addressed_to": str(addressee.id),
            "circumstances": "Found in a lorry at the border post.",
            "illicit_reason": "Unlicensed possession.",
            "intended_use": "Criminal investigation.",
        },
        "handling": {"tlp": "amber", "audience": "recipients"},
    }
    body.update(overrides)
    return body
