"""Request and response models of reports and statements (they generate `/openapi.json`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.fields import Ident, YearMonth

CampaignId = Annotated[Ident, Field(max_length=64)]
_CAMPAIGN_ID = TypeAdapter(CampaignId)


def is_campaign_id(text: str) -> bool:
    """True when `text` could be a campaign id (never a NUL or control character)."""
    try:
        _CAMPAIGN_ID.validate_python(text)
    except ValidationError:
        return False
    return True


class StatementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: CampaignId
    period: YearMonth
    format: Literal["json", "csv"] = "json"


class StatementLine(BaseModel):
    date: str | None
    kind: str
    entries: int
    attributed_revenue: int
    discount_cost: int
    revenue_share: int
    provisional: bool = False


class Statement(BaseModel):
    campaign_id: str
    period: str
    currency: str = "JPY"
    basis: str
    pct: float
    status: Literal["closed", "open", "provisional"]
    lines: list[StatementLine]
    total: dict[str, int]


class Report(BaseModel):
    """The campaign report; see build_report in reports/report.py for each figure's definition."""

    model_config = ConfigDict(extra="allow")
    campaign_id: str
    counts: dict[str, Any]
    money: dict[str, Any]
    lift: dict[str, Any]
    revenue_share: dict[str, Any]
    per_call_fee: dict[str, Any]
    periods: list[dict[str, Any]]
