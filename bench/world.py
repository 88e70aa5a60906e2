"""The population the write-side scenarios run against: agencies, clients, subscriptions."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.agencies.models import Agency
from app.authz.principal import Principal, Scope
from app.core.config import Settings
from app.core.db import Database
from app.webhooks import service as webhooks
from app.webhooks.schemas import SubscriptionCreate
from bench.harness import client_token, database
from tests.conftest import settings_for
from tests.factories import make_agency, make_client, seizure_body

COUNTRIES = ["KE", "CO", "DE", "PH", "JO", "UG", "NG", "ML", "FR", "BR", "MX", "TR", "UA", "ZA"]


@dataclass
class World:
    """Originating agencies (with API clients) and the subscriber agencies they address."""

    url: str
    clients: list[tuple[str, str]] = field(default_factory=list)  # (client id, secret)
    subscribers: list[uuid.UUID] = field(default_factory=list)
    hook_secrets: dict[str, str] = field(default_factory=dict)  # path segment -> whsec_
    tokens: list[str] = field(default_factory=list)

    def write_secrets(self, path: Path) -> Path:
        path.write_text(json.dumps(self.hook_secrets))
        return path

    async def login(self, base_url: str) -> None:
        """One access token per originating agency's client."""
        self.tokens = [await client_token(base_url, cid, secret) for cid, secret in self.clients]

    def alert_body(self, n: int) -> dict:
        """A published seizure with two serialised items, addressed to every subscriber."""
        body = copy.deepcopy(SEIZURE)
        body["title"] = f"Rifles seized at a border crossing (bench {n})"
        body["country"] = COUNTRIES[n % len(COUNTRIES)]
        body["items"][0]["serial_raw"] = f"BX-{n:08d}"
        # One alert in fifty repeats an earlier serial, so hit matching has work to do.
        body["items"][1]["serial_raw"] = f"M70-{(n // 50 if n % 50 == 0 else n):08d}"
        body["handling"]["recipient_agencies"] = [str(a) for a in self.subscribers]
        return body


SEIZURE = seizure_body(
    publish=True, handling={"tlp": "amber", "audience": "recipients", "recipient_agencies": []}
)


async def build(url: str, *, originators: int, subscribers: int, hook_base: str) -> World:
    """`originators` agencies with a writing client; `subscribers` agencies with one
    subscription each (to `hook_base`/<index>), all of which every bench alert matches."""
    db = database(url)
    world = World(url)
    port = urlsplit(hook_base).port or 80
    settings = settings_for(
        url, webhook_allow_networks=[f"127.0.0.1:{port}"], webhook_require_https=False
    )
    try:
        for i in range(originators):
            agency = await make_agency(db, country=COUNTRIES[i % len(COUNTRIES)])
            client, secret = await make_client(db, agency, "alerts:read alerts:write")
            world.clients.append((str(client.id), secret))
        for i in range(subscribers):
            agency = await make_agency(db, country=COUNTRIES[i % len(COUNTRIES)])
            world.subscribers.append(agency.id)
            secret = await _subscribe(db, settings, agency, f"{hook_base}/{i}")
            world.hook_secrets[str(i)] = secret
    finally:
        await db.dispose()
    return world


async def _subscribe(db: Database, settings: Settings, agency: Agency, url: str) -> str:
    # A real client that may read alerts: its subscription carries content, as in use.
    manager, _ = await make_client(db, agency, "alerts:read webhooks:manage")
    principal = Principal(
        kind="client",
        id=manager.id,
        agency_id=agency.id,
        role=None,
        scopes=frozenset({Scope.alerts_read, Scope.webhooks_manage}),
        name="bench set-up",
        token_id="bench",
    )
    async with db.session() as session:
        _, secret = await webhooks.create(
            session,
            principal,
            SubscriptionCreate(url=url, event_types=["alert.published"]),
            settings,
        )
        await session.commit()
    return secret
