"""The demo data: all three kinds under varied handling, different lists per agency."""

from __future__ import annotations

from app.seed.demo import DEMO_PASSWORD, seed_demo
from tests.factories import bearer, password_login


async def _titles(client, email: str) -> set[str]:
    token = (await password_login(client, email, DEMO_PASSWORD))["access_token"]
    answer = await client.get("/api/v1/alerts?limit=500", headers=bearer(token))
    assert answer.status_code == 200
    return {a["title"] for a in answer.json()["items"] if not a["tombstone"]}


async def test_demo_agencies_see_different_lists(client, settings):
    await seed_demo(settings)
    await seed_demo(settings)  # safe to run twice: nothing doubles
    kenya = await _titles(client, "focal@ke.tracewire.example")
    germany = await _titles(client, "reader@de.tracewire.example")
    jordan = await _titles(client, "reader@jo.tracewire.example")
    assert kenya != germany != jordan
    assert "Trace request: AKM rifle from the Busia seizure" in kenya & germany
    assert "Trace request: AKM rifle from the Busia seizure" not in jordan
    assert "Pistols with obliterated serials recovered in Cali" in germany - kenya
    red = "Attempted purchase of drone flight controllers by a shell company"
    assert red in jordan and red not in kenya | germany
    assert not any(t.startswith("Draft:") for t in kenya | jordan)
    assert "Draft: parcel with pistol parts intercepted in Leipzig" in await _titles(
        client, "admin@de.tracewire.example"
    )
    assert len(kenya) == len(set(kenya))


async def test_demo_has_a_trace_in_each_state_and_a_hit(client, settings):
    await seed_demo(settings)
    token = (await password_login(client, "focal@ke.tracewire.example", DEMO_PASSWORD))[
        "access_token"
    ]
    hits = (await client.get("/api/v1/hits", headers=bearer(token))).json()["items"]
    assert {h["tier"] for h in hits} == {"strong"}
    assert {h["other"]["agency_country"] for h in hits} == {"JO"}
    states = set()
    for prefix in ("ke", "co", "de", "ph", "jo", "intl"):
        token = (await password_login(client, f"reader@{prefix}.tracewire.example", DEMO_PASSWORD))[
            "access_token"
        ]
        page = (await client.get("/api/v1/trace-requests", headers=bearer(token))).json()
        states |= {t["state"] for t in page["items"]}
    assert states == {
        "submitted",
        "acknowledged",
        "info_requested",
        "responded",
        "closed",
        "withdrawn",
    }
