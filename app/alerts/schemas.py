"""Request and answer bodies for alerts: items, handling, and a `details` body per kind."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Query
from pydantic import Field, model_validator

from app.core.schemas import (
    CountryCode,
    InputModel,
    OutputModel,
    QueryText,
    Text50OrEmpty,
    Text60,
    Text100,
    Text200,
    Text300,
    Text500,
    Text2000,
    Text4000,
    Text20000OrEmpty,
)
from app.core.types import Instant
from app.sharing.handling import AlertKind, AlertStatus, Audience, Handling, Tlp

ShortText = Text100
LongText = Text4000
Tag = Annotated[Text60, Field(pattern=r"^[^\s,][^,]*$")]


class ItemCategory(StrEnum):
    small_arm = "small_arm"
    light_weapon = "light_weapon"
    weapon_part = "weapon_part"
    ammunition = "ammunition"
    military_equipment = "military_equipment"
    uas = "uas"
    uas_component = "uas_component"
    ied_component = "ied_component"
    precursor = "precursor"


class SerialStatus(StrEnum):
    present = "present"
    partially_obliterated = "partially_obliterated"
    obliterated = "obliterated"
    restored = "restored"
    absent = "absent"


class Unit(StrEnum):
    pieces = "pieces"
    rounds = "rounds"
    boxes = "boxes"
    kg = "kg"
    g = "g"
    l = "l"  # noqa: E741 - litres
    m = "m"


class Marking(InputModel):
    """A marking as it appears on the item, with its script and transliteration."""

    text: Annotated[Text500, Field(description="The marking as marked, in its own script.")]
    script: Annotated[str, Field(max_length=4, pattern=r"^[A-Z][a-z]{3}$")] | None = Field(
        default=None, description="ISO 15924 script code, e.g. `Cyrl`, `Arab`, `Latn`."
    )
    transliteration: Text500 | None = None
    location: ShortText | None = Field(default=None, description="e.g. frame, slide, barrel.")
    kind: ShortText | None = Field(default=None, description="serial, proof, import, headstamp …")


class ItemIn(InputModel):
    category: ItemCategory
    make: ShortText | None = None
    model: ShortText | None = None
    calibre: Text50OrEmpty | None = None
    type: ShortText | None = None
    country_of_manufacture: CountryCode | None = None
    year: Annotated[int, Field(ge=1800, le=2100)] | None = None
    serial_raw: ShortText | None = Field(default=None, description="The serial as read.")
    serial_status: SerialStatus = SerialStatus.present
    markings: list[Marking] = Field(default_factory=list, max_length=20)
    lot: ShortText | None = None
    quantity: Annotated[float, Field(gt=0, le=1e9)] = 1
    unit: Unit = Unit.pieces


class ItemRead(OutputModel):
    id: uuid.UUID
    category: ItemCategory
    make: str | None
    model: str | None
    calibre: str | None
    type: str | None
    country_of_manufacture: str | None
    year: int | None
    serial_raw: str | None
    serial_status: SerialStatus
    serial_key: str | None = Field(description="Derived match key; null when unserialised.")
    markings: list[dict[str, str | None]]
    lot: str | None
    quantity: float
    unit: Unit


class Location(InputModel):
    text: Text300
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


# --- kind-specific details --------------------------------------------------------------


class IllicitBasis(StrEnum):
    illegal_under_national_law = "illegal_under_national_law"
    embargo_breach = "embargo_breach"
    not_marked = "not_marked"
    unlicensed_manufacture = "unlicensed_manufacture"
    unlicensed_transfer = "unlicensed_transfer"


class SeizedWeaponDetails(InputModel):
    seized_at: Instant | None = None
    seizure_place: Text200 | None = None
    circumstances: LongText | None = None
    illicit_basis: list[IllicitBasis] = Field(default_factory=list, max_length=5)
    illicit_basis_note: LongText | None = None
    custody_reference: ShortText | None = None


class Priority(StrEnum):
    routine = "routine"
    urgent = "urgent"


class TraceRequestDetails(InputModel):
    addressed_to: uuid.UUID = Field(description="The requested agency; always a recipient.")
    circumstances: LongText = Field(description="How and where the items were found.")
    illicit_reason: LongText = Field(description="Why the items are considered illicit.")
    intended_use: LongText = Field(description="What the information will be used for.")
    priority: Priority = Priority.routine
    priority_justification: LongText | None = None
    ack_due: Instant | None = None
    response_due: Instant | None = None
    case_reference: ShortText | None = None
    countries_of_interest: list[CountryCode] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _urgent_needs_reason(self) -> TraceRequestDetails:
        if self.priority is Priority.urgent and not self.priority_justification:
            raise ValueError("an urgent request needs priority_justification")
        return self


class ProcurementState(StrEnum):
    enquiry = "enquiry"
    attempted = "attempted"
    refused = "refused"
    completed = "completed"


class PartyRole(StrEnum):
    buyer = "buyer"
    consignee = "consignee"
    end_user = "end_user"
    broker = "broker"
    forwarder = "forwarder"
    carrier = "carrier"
    financier = "financier"


class Party(InputModel):
    role: PartyRole
    name: Text200
    country: CountryCode | None = None
    address: Text500 | None = None
    identifiers: list[ShortText] = Field(default_factory=list, max_length=10)


class GoodsLine(InputModel):
    description: Text500
    hs_code: Annotated[str, Field(pattern=r"^\d{4}(\.?\d{2}){0,3}$")] | None = None
    quantity: Annotated[float, Field(gt=0, le=1e12)] | None = None
    unit: ShortText | None = None
    value: Annotated[float, Field(ge=0, le=1e15)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


class ShipmentMode(StrEnum):
    air = "air"
    sea = "sea"
    road = "road"
    rail = "rail"
    post = "post"
    courier = "courier"
    unknown = "unknown"


class Shipment(InputModel):
    mode: ShipmentMode = ShipmentMode.unknown
    route: list[CountryCode] = Field(default_factory=list, max_length=20)
    documents: list[Text200] = Field(default_factory=list, max_length=20)


class SuspiciousProcurementDetails(InputModel):
    state: ProcurementState
    parties: list[Party] = Field(default_factory=list, max_length=50)
    goods: list[GoodsLine] = Field(default_factory=list, max_length=200)
    shipment: Shipment | None = None
    indicators: list[Text200] = Field(default_factory=list, max_length=30)


DETAILS_BY_KIND: dict[AlertKind, type[InputModel]] = {
    AlertKind.seized_weapon: SeizedWeaponDetails,
    AlertKind.trace_request: TraceRequestDetails,
    AlertKind.suspicious_procurement: SuspiciousProcurementDetails,
}


# --- create / update / read ---------------------------------------------------------------


class _AlertCommon(InputModel):
    title: Text200
    summary: Text20000OrEmpty = ""
    country: CountryCode = Field(description="Where it happened (ISO 3166-1 alpha-2).")
    occurred_at: Instant | None = None
    location: Location | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=30)
    items: list[ItemIn] = Field(default_factory=list, max_length=500)
    handling: Handling | None = Field(
        default=None, description="Omit to apply the agency's default for this kind."
    )
    publish: bool = Field(default=False, description="Publish at once instead of a draft.")


class SeizedWeaponCreate(_AlertCommon):
    kind: Literal[AlertKind.seized_weapon]
    details: SeizedWeaponDetails = Field(default_factory=SeizedWeaponDetails)


class TraceRequestCreate(_AlertCommon):
    kind: Literal[AlertKind.trace_request]
    details: TraceRequestDetails


class SuspiciousProcurementCreate(_AlertCommon):
    kind: Literal[AlertKind.suspicious_procurement]
    details: SuspiciousProcurementDetails


AlertCreateBody = SeizedWeaponCreate | TraceRequestCreate | SuspiciousProcurementCreate
AlertCreate = Annotated[AlertCreateBody, Field(discriminator="kind")]


class AlertUpdate(InputModel):
    """Every field optional; `items` and `tags` replace the whole list."""

    title: Text200 | None = None
    summary: Text20000OrEmpty | None = None
    country: CountryCode | None = None
    occurred_at: Instant | None = None
    location: Location | None = None
    tags: list[Tag] | None = Field(default=None, max_length=30)
    items: list[ItemIn] | None = Field(default=None, max_length=500)
    handling: Handling | None = None
    details: dict[str, object] | None = Field(
        default=None, description="The whole `details` body of the alert's kind."
    )


class WithdrawRequest(InputModel):
    reason: Text2000


class HandlingRead(OutputModel):
    tlp: Tlp
    audience: Audience
    recipient_agencies: list[uuid.UUID] | None = Field(
        default=None, description="Shown to the originator only."
    )
    recipient_groups: list[uuid.UUID] | None = Field(
        default=None, description="Shown to the originator only."
    )
    embargo_until: Instant | None
    handling_codes: list[str]


class AlertRead(OutputModel):
    """An alert; for a withdrawn alert read by a recipient, only the tombstone fields; for a
    TLP:RED alert read by an API client without `alerts:read:red`, only a reference."""

    id: uuid.UUID
    kind: AlertKind
    status: AlertStatus
    version: int
    originator_agency_id: uuid.UUID
    addressed_to_agency_id: uuid.UUID | None
    created_at: Instant
    updated_at: Instant
    published_at: Instant | None
    withdrawn_at: Instant | None
    withdrawal_reason: str | None
    tombstone: bool = Field(description="True when the content has been withdrawn from you.")
    reference: bool = Field(
        default=False,
        description=(
            "True when this is only a reference to a TLP:RED alert (`tlp`, `url`): an API "
            "client reads red content only with the `alerts:read:red` scope."
        ),
    )
    tlp: Tlp | None = Field(default=None, description="Set on a reference only.")
    url: str | None = Field(default=None, description="Set on a reference only: the alert.")
    title: str | None = None
    summary: str | None = None
    country: str | None = None
    occurred_at: Instant | None = None
    location: dict[str, object] | None = None
    tags: list[str] | None = None
    handling: HandlingRead | None = None
    details: dict[str, object] | None = None
    items: list[ItemRead] | None = None


class AlertPage(OutputModel):
    items: list[AlertRead]
    next_cursor: str | None = None


class AccessReason(OutputModel):
    rule: Literal["originator", "addressee", "recipient_agency", "group_member", "community"]
    group_id: uuid.UUID | None = None


class AccessRead(OutputModel):
    alert_id: uuid.UUID
    agency_id: uuid.UUID
    reasons: list[AccessReason]
    can_edit: bool


class AudiencePreviewRequest(InputModel):
    kind: AlertKind
    handling: Handling | None = Field(default=None, description="Omit for the policy default.")
    addressed_to: uuid.UUID | None = Field(default=None, description="Trace requests only.")
    country: CountryCode | None = Field(
        default=None, description="Where it happened, for subscriptions filtered by country."
    )


class AudienceAgency(OutputModel):
    id: uuid.UUID
    name: str
    country: str
    reasons: list[AccessReason]
    subscriptions: int | None = Field(
        default=None,
        description="Your own agency's webhook subscriptions that would receive "
        "`alert.published`; null for every other agency.",
    )


class HiddenGroup(OutputModel):
    group_id: uuid.UUID
    member_count: int


class AudiencePreview(OutputModel):
    handling: HandlingRead
    agencies: list[AudienceAgency]
    hidden_groups: list[HiddenGroup] = Field(
        default_factory=list, description="Groups whose members are hidden from you."
    )
    embargoed_until: Instant | None = None


# The list filters that carry limits, declared once: `GET /alerts` takes them and the
# console's list validates its form with the same types.
TagFilter = Annotated[str | None, Query(max_length=60), QueryText]
SerialFilter = Annotated[
    str | None, Query(max_length=100, description="Matches `serial_key`."), QueryText
]
TextQuery = Annotated[
    str | None, Query(min_length=1, max_length=200, description="Text search."), QueryText
]
CountryFilter = Annotated[CountryCode | None, Query()]
