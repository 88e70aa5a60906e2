"""The alert matrix (tests/alerts/test_matrix.py) over STIX export and TAXII.

Same world, same oracle (written from DESIGN, not from app/sharing): every principal x
relationship x handling gets from `GET /alerts/{id}/stix` and from TAXII `objects/{id}`
exactly what `GET /alerts/{id}` gives (TAXII feeds only released alerts: a draft is 404
there even for its originator), a tombstone stays a tombstone, a reference (red, to a
client without `alerts:read:red`) stays a reference, and every answer has its standard's
media type.
"""

from __future__ import annotations

import asyncio

import httpx

from app.interop.taxii_http import TAXII_MEDIA_TYPE
from tests.alerts.test_matrix import (
    World,
    read_status,
    view,
    world,  # noqa: F401 - the matrix's fixture, reused
)
from tests.interop.helpers import ACCEPT, ALL

PROBLEM = "application/problem+json"


def _view(objects: list[dict], report_id: str) -> str:
    report = next((o for o in objects if o["id"] == report_id), None)
    if report is None:
        return "no report"
    flag = report["extensions"]["extension-definition--18955755-1974-4af1-b67e-85e6ec262497"]
    items = [o for o in objects if o["type"] == "seized-item"]
    if flag.get("reference"):
        leaked = [k for k in ("description", "labels") if k in report] + (
            ["items"] if items else []
        )
        leaked += [k for k in ("country", "details", "handling", "occurred_at") if k in flag]
        return "reference" if not leaked else f"leaky reference {leaked}"
    if flag["tombstone"]:
        leaked = [k for k in ("description", "labels") if k in report] + (
            ["items"] if items else []
        )
        return "tombstone" if not leaked else f"leaky tombstone {leaked}"
    return "content"


async def test_stix_and_taxii_follow_the_read_matrix(
    client: httpx.AsyncClient,
    world: World,  # noqa: F811
):
    gate = asyncio.Semaphore(8)
    mismatches: list[str] = []
    checked = 0

    async def one(
        where: str,
        url: str,
        headers: dict,
        expected: int,
        media: str,
        principal: str,
        rel,
        case,
        alert_id,
    ):
        nonlocal checked
        async with gate:
            answer = await client.get(url, headers=headers)
        checked += 1
        got = answer.status_code
        if got >= 400 and not answer.headers.get("content-type", "").startswith(media):
            got = f"{got} ({answer.headers.get('content-type')})"
        if got != expected:
            mismatches.append(f"{where}: expected {expected} got {got}")
            return
        if expected == 200:
            body = answer.json()
            objects = body["objects"]
            report_id = f"report--{alert_id}"
            want = view(principal, rel, case)
            seen = _view(objects, report_id) if objects else "empty"
            if seen != want:
                mismatches.append(f"{where} view: expected {want} got {seen}")

    calls = []
    for case, alert in world.alerts.items():
        for (rel, principal), headers in world.headers.items():
            expected = read_status(principal, rel, case)
            label = f"{principal}/{rel}/{case.label}"
            stix_url = f"/api/v1/alerts/{alert['id']}/stix"
            calls.append(
                one(
                    f"stix/{label}",
                    stix_url,
                    headers,
                    expected,
                    PROBLEM,
                    principal,
                    rel,
                    case,
                    alert["id"],
                )
            )
            taxii_expected = (
                404 if expected == 200 and case.handling.status == "draft" else expected
            )
            taxii_url = f"{ALL}objects/report--{alert['id']}/"
            calls.append(
                one(
                    f"taxii/{label}",
                    taxii_url,
                    {**headers, **ACCEPT},
                    taxii_expected,
                    TAXII_MEDIA_TYPE,
                    principal,
                    rel,
                    case,
                    alert["id"],
                )
            )
    await asyncio.gather(*calls)
    print(f"stix+taxii: {checked} cases checked, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)
