"""The marketer API's request and response models (docs/interfaces.md § Marketer campaign API).

The same models validate request bodies and generate `/openapi.json`, so the document
cannot drift from what the API accepts. Unknown fields are rejected; numbers are strict
(a JSON string or boolean is never read as a number) and bounded (money and counts up
to 10^12, no NaN or Infinity); text has no control characters; dates are within
2000..2100 (shared/fields.py, docs/interfaces.md § Conventions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.events import Language
from shared.fields import MAX_MONEY, BoundedDatetime, FiniteFloat, Money, PlainText

MAX_OFFERS = 16  # the offer index is 4 bits of a coupon code (shared/coupons.py)
MAX_VALID_HOURS = 24 * 90
# A campaign that does not say otherwise gives one customer at most this many coupons.
DEFAULT_PER_CUSTOMER_TOTAL = 3

Count = Annotated[int, Field(strict=True, ge=0, le=MAX_MONEY)]
Percent = Annotated[FiniteFloat, Field(ge=0, le=100, description="0-100")]
VisitsPerWeek = Annotated[FiniteFloat, Field(ge=0, le=1000)]
Label = Annotated[PlainText, Field(max_length=64)]
Title = Annotated[PlainText, Field(max_length=200)]
Status = Literal["draft", "active", "paused", "ended"]
# docs/architecture.md § Budget pacing (budget/pacing.py PACINGS says the same two words).
Pacing = Literal["even", "asap"]
MESSAGE_COST_DOC = "yen per push message; a pushed coupon must also earn this back"
PACING_DOC = "even: spread the budget over the window (default); asap: no pacing"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Discount(Model):
    type: Literal["amount", "percent", "free_item"]
    value: Money = Field(
        description="yen off (amount), percent off (percent, 0-100), or the free item's price"
    )

    @field_validator("value")
    @classmethod
    def _percent_in_range(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("type") == "percent" and value > 100:
            raise ValueError("a percent discount must be within 0-100")
        return value


class AppliesTo(Model):
    """Exactly one of `skus` or `categories`."""

    skus: list[Label] | None = Field(default=None, min_length=1, max_length=500)
    categories: list[Label] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _exactly_one(self) -> AppliesTo:
        if (self.skus is None) == (self.categories is None):
            raise ValueError("give exactly one of skus or categories")
        return self


class OfferIn(Model):
    offer_id: Label | None = Field(
        default=None, description="on PATCH: the existing offer this one updates"
    )
    title: Title
    discount: Discount
    applies_to: AppliesTo
    min_basket: Money = 0
    valid_hours: Annotated[int, Field(strict=True, ge=1, le=MAX_VALID_HOURS)] = Field(
        default=72, description="how long a coupon stays valid after it is issued"
    )


class Budget(Model):
    max_coupons: Count
    max_redemptions: Count | None = Field(default=None, description="null: no limit")
    max_discount_total: Money | None = Field(default=None, description="null: no limit")


class BudgetPatch(Model):
    max_coupons: Count | None = None
    max_redemptions: Count | None = None
    max_discount_total: Money | None = None


class Caps(Model):
    per_customer_per_day: Count | None = Field(default=1, description="null: no limit")
    per_customer_total: Count | None = Field(
        default=DEFAULT_PER_CUSTOMER_TOTAL,
        description=f"coupons per customer over the campaign; {DEFAULT_PER_CUSTOMER_TOTAL} "
        "when not given, null: no limit",
    )


class CapsPatch(Model):
    per_customer_per_day: Count | None = None
    per_customer_total: Count | None = None


class Audience(Model):
    """Optional rules on customer attributes; a customer must meet every rule given."""

    languages: list[Language] | None = Field(default=None, min_length=1)
    linked_only: Annotated[bool, Field(strict=True)] = False
    max_days_since_follow: Count | None = None
    min_visits_per_week: VisitsPerWeek | None = None
    max_visits_per_week: VisitsPerWeek | None = None
    min_avg_basket: Money | None = None
    max_avg_basket: Money | None = None
    bought_categories: list[Label] | None = Field(
        default=None, min_length=1, description="has bought from any of these categories"
    )


class RevenueShare(Model):
    pct: Percent
    basis: Literal["attributed", "incremental"]


class CampaignIn(Model):
    name: Title
    starts_at: BoundedDatetime
    ends_at: BoundedDatetime
    offers: list[OfferIn] = Field(min_length=1, max_length=MAX_OFFERS)
    budget: Budget
    caps: Caps = Field(default_factory=Caps)
    holdout_pct: Percent = 10.0
    audience: Audience | None = None
    revenue_share: RevenueShare
    per_call_fee: Money = 0
    message_cost: Money = Field(default=0, description=MESSAGE_COST_DOC)
    pacing: Pacing = Field(default="even", description=PACING_DOC)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and value <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return value


class CampaignPatch(Model):
    """Fields to change; budget and caps merge field by field, the rest replace whole."""

    name: Title | None = None
    starts_at: BoundedDatetime | None = None
    ends_at: BoundedDatetime | None = None
    offers: list[OfferIn] | None = Field(default=None, min_length=1, max_length=MAX_OFFERS)
    budget: BudgetPatch | None = None
    caps: CapsPatch | None = None
    holdout_pct: Percent | None = None
    audience: Audience | None = None
    revenue_share: RevenueShare | None = None
    per_call_fee: Money | None = None
    message_cost: Money | None = Field(default=None, description=MESSAGE_COST_DOC)
    pacing: Pacing | None = Field(default=None, description=PACING_DOC)


class OfferOut(Model):
    offer_id: str
    index: int
    withdrawn: bool = False
    title: str
    discount: Discount
    applies_to: AppliesTo
    min_basket: int
    valid_hours: int


class CampaignOut(Model):
    campaign_id: str
    number: int
    status: Status
    name: str
    starts_at: datetime
    ends_at: datetime
    offers: list[OfferOut]
    budget: Budget
    caps: Caps
    holdout_pct: float
    audience: Audience | None
    revenue_share: RevenueShare
    per_call_fee: int
    message_cost: int
    pacing: Pacing
    created_at: datetime
    updated_at: datetime


class CampaignList(Model):
    items: list[CampaignOut]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class ListQuery(Model):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=40)
    status: Status | None = None
