"""Request and response models of reports and statements (they generate `/openapi.json`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StatementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: Annotated[str, Field(min_length=1, max_length=64)]
    period: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


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
