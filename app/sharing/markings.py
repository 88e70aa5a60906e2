"""Markings on imported records: one decision from a marking to the handling block stored.

Every import path (TAXII push today; spreadsheets and MISP later) hands its records'
markings to `handling_for_import`. A marking is a token: a STIX marking-definition id
(the official TLP 2.0 ones, and the TLP 1.0 ones mapped to the same or a stricter 2.0
level) or a TLP label such as MISP's `tlp:red` tag. Several markings on one record mean
its strictest; a marking we do not know refuses the record (it may restrict more than we
can tell), and so does a TLP the handling rules cannot honour with the agency's default
audience. A marking is never widened; a record without one takes the policy default.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.principal import Principal
from app.core.errors import FieldError, InvalidInput
from app.sharing import service as sharing
from app.sharing.handling import TLP_ORDER, AlertKind, Handling, Tlp

# The official FIRST TLP 2.0 marking definitions (OASIS cti-stix-common-objects).
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_MARKING_IDS: dict[Tlp, str] = {
    Tlp.clear: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.green: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.amber: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.amber_strict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.red: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# The TLP 1.0 marking definitions STIX 2.0/2.1 predefine (`stix2.TLP_WHITE` …), each
# taken at the TLP 2.0 level that allows no more than it did.
TLP1_MARKING_IDS: dict[str, Tlp] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.clear,  # white
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.green,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.amber,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.red,
}
# Labels (MISP tags, TLP names in free text), compared case-insensitively.
TLP_LABELS: dict[str, Tlp] = {
    "tlp:clear": Tlp.clear,
    "tlp:white": Tlp.clear,
    "tlp:green": Tlp.green,
    "tlp:amber": Tlp.amber,
    "tlp:amber+strict": Tlp.amber_strict,
    "tlp:red": Tlp.red,
}
_BY_ID: dict[str, Tlp] = {v: k for k, v in TLP2_MARKING_IDS.items()} | TLP1_MARKING_IDS


class UnknownMarking(InvalidInput):
    """A marking that is not one of the TLP markings Tracewire can honour."""

    slug, title = "unknown-marking", "Unknown marking"


def tlp_of_marking(token: str) -> Tlp | None:
    """The TLP 2.0 level a marking stands for, or None when it is not one we know."""
    token = token.strip()
    return _BY_ID.get(token.lower()) or TLP_LABELS.get(token.lower())


def strictest_tlp(tokens: Iterable[str], *, field: str = "markings") -> Tlp | None:
    """The strictest TLP among the markings (None: no marking); any unknown one refuses."""
    found: Tlp | None = None
    for index, token in enumerate(tokens):
        tlp = tlp_of_marking(token)
        if tlp is None:
            message = f"unknown marking {token!r}: only TLP markings can be honoured"
            raise UnknownMarking(
                f"{message}; nothing was stored",
                errors=[FieldError(field=f"{field}.{index}", message=message, type="marking")],
            )
        if found is None or TLP_ORDER[tlp] > TLP_ORDER[found]:
            found = tlp
    return found


async def handling_for_import(
    session: AsyncSession,
    principal: Principal,
    markings: Iterable[str],
    *,
    kind: AlertKind,
    addressed_to: uuid.UUID | None,
    field: str = "markings",
) -> Handling:
    """The handling of an imported record: the policy default at the marking's TLP.

    The audience and recipients are the agency's default for `kind`; the TLP is the
    record's strictest marking. When the rules (DESIGN §4) or the policy ceiling cannot
    take that TLP with that audience (red to the community, red to groups), the record
    is refused with the rule named: it is never stored under a wider marking.
    """
    tlp = strictest_tlp(markings, field=field)
    default, _ = await sharing.policy_for(session, principal.agency_id, kind)
    fallback = (
        sharing.TRACE_FALLBACK_HANDLING
        if kind is AlertKind.trace_request
        else sharing.FALLBACK_HANDLING
    )
    base = default or fallback
    handling = base if tlp is None else base.model_copy(update={"tlp": tlp})
    # The same checks as a post with this handling: the TLP rules, the ceiling, the names.
    return await sharing.resolve_handling(
        session, principal, handling, kind=kind, addressed_to=addressed_to, field=field
    )
