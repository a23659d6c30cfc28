"""The drop API's request and response models (docs/interfaces.md § Campaign drops).

Bad values are named by their dotted path (`quiet_hours.timezone`, `max_messages`, …)
through shared.http's validation errors, like every other body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from services.campaign_engine.campaigns.schemas import Audience
from shared.fields import MAX_MONEY, BoundedDatetime
from shared.quiet_hours import DEFAULT_QUIET_HOURS, parse_hhmm, zone

_ZONES: list[JsonValue] = [*sorted(available_timezones())]
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Messages = Annotated[int, Field(strict=True, ge=1, le=MAX_MONEY)]
DropStatus = Literal["queued", "running", "waiting_quiet_hours", "done", "cancelled", "failed"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuietHoursIn(Model):
    """No pushes from `start` to `end` (HH:MM; may span midnight) in `timezone` (IANA)."""

    start: str = Field(default=DEFAULT_QUIET_HOURS["start"], pattern=_HHMM, examples=["22:00"])
    end: str = Field(default=DEFAULT_QUIET_HOURS["end"], pattern=_HHMM, examples=["08:00"])
    # The schema lists the zones this machine knows, so a client (or the fuzzer) can tell a
    # valid name from the schema alone; the validator below is what decides.
    timezone: str = Field(
        default=DEFAULT_QUIET_HOURS["timezone"],
        max_length=64,
        examples=["Asia/Tokyo"],
        json_schema_extra={"enum": _ZONES},
    )

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


class DropIn(Model):
    """A drop of the campaign to its audience (narrowed by `audience`)."""

    audience: Audience | None = None
    max_messages: Messages | None = None
    send_after: BoundedDatetime | None = None
    quiet_hours: QuietHoursIn | None = Field(
        default_factory=QuietHoursIn, description="22:00-08:00 Asia/Tokyo unless given; null: none"
    )
    dry_run: Annotated[bool, Field(strict=True)] = False


class DropEstimate(Model):
    """A dry run: what the drop would do now, nothing sent.

    `expected_coupons` is an upper bound: every eligible customer outside the holdout,
    within the campaign's coupons left and `max_messages`; the policy may still refuse
    some (a coupon whose expected value does not cover coupon and message).
    """

    dry_run: Literal[True] = True
    campaign_id: str
    eligible: int
    holdout: int
    expected_coupons: int
    expected_messages: int
    message_cost: int
    expected_message_cost: int
    broadcast_messages: int
    broadcast_cost: int


class DropReport(Model):
    """Messages sent against a broadcast to every eligible follower, and the cost saved."""

    message_cost: int
    messages_sent: int
    broadcast_messages: int
    messages_saved: int
    cost: int
    broadcast_cost: int
    cost_saved: int


class DropOut(Model):
    drop_id: str
    campaign_id: str
    status: DropStatus
    eligible: int
    decided: int
    coupons: int
    no_coupon: int
    holdout: int
    pushed: int
    failed: int
    remaining: int
    max_messages: int | None
    send_after: datetime | None
    quiet_hours: QuietHoursIn | None
    audience: Audience | None
    created_at: datetime
    report: DropReport


class DropList(Model):
    items: list[DropOut]
