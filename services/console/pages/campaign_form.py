"""The campaign form: its fields, the API body built from a submitted form, and the form
values of an existing campaign (docs/interfaces.md § Marketer campaign API, Campaign fields).

Each input is named by the API's dotted field path, so an API error names its input.
Values are sent as typed; what does not read as a number is sent as the text it is and
the API's 422 names the field. Empty optional fields are left out: the API's defaults
apply (so `message_cost` and `pacing` are sent only when the marketer sets them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

MIN_OFFER_ROWS = 3
LANGUAGE_CHOICES = ("ja", "en", "id")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "int"  # int | number | text | datetime | select | list
    choices: tuple[str, ...] = ()
    required: bool = False
    hint: str = ""
    rule: str = ""  # "fixed": set once live; "lower": a limit that may only go down


CAMPAIGN_FIELDS = (
    Field("name", "Name", "text", required=True),
    Field("starts_at", "Starts at", "datetime", required=True, rule="fixed"),
    Field("ends_at", "Ends at", "datetime", required=True),
    Field("holdout_pct", "Holdout %", "number", rule="fixed"),
    Field("revenue_share.pct", "Revenue share %", "number", required=True, rule="fixed"),
    Field(
        "revenue_share.basis",
        "Revenue share basis",
        "select",
        ("attributed", "incremental"),
        rule="fixed",
    ),
    Field("per_call_fee", "Per-call fee (¥)", rule="fixed"),
    Field("message_cost", "Message cost (¥)"),
    Field("pacing", "Pacing", "select", ("", "even", "asap")),
)
BUDGET_FIELDS = (
    Field("budget.max_coupons", "Max coupons", required=True, rule="lower"),
    Field("budget.max_redemptions", "Max redemptions", hint="empty = no limit", rule="lower"),
    Field(
        "budget.max_discount_total", "Max discount total (¥)", hint="empty = no limit", rule="lower"
    ),
    Field("caps.per_customer_per_day", "Per customer per day", rule="lower"),
    Field("caps.per_customer_total", "Per customer total", rule="lower"),
)
AUDIENCE_FIELDS = (
    Field("audience.bought_categories", "Bought categories", "list", hint="comma-separated"),
    Field("audience.max_days_since_follow", "Followed within (days)"),
    Field("audience.min_visits_per_week", "Visits per week at least", "number"),
    Field("audience.max_visits_per_week", "Visits per week at most", "number"),
    Field("audience.min_avg_basket", "Average basket at least (¥)"),
    Field("audience.max_avg_basket", "Average basket at most (¥)"),
)
OFFER_FIELDS = (
    Field("title", "Title", "text"),
    Field("discount.type", "Discount type", "select", ("amount", "percent", "free_item")),
    Field("discount.value", "Discount value"),
    Field("applies_to.kind", "Applies to", "select", ("categories", "skus")),
    Field("applies_to.values", "Categories or SKUs", "list", hint="comma-separated"),
    Field("min_basket", "Minimum basket (¥)"),
    Field("valid_hours", "Valid hours"),
)


APPLIES_TO = re.compile(r"^(offers\.\d+\.applies_to)(\.(skus|categories)(\.\d+)?)?$")


def error_field(path: str) -> str:
    """The form's name for an API error path: the offer's skus or categories (or the
    applies_to object) are the one "Categories or SKUs" input."""
    found = APPLIES_TO.match(path)
    return f"{found.group(1)}.values" if found else path


def offer_rows(count: int) -> int:
    return max(MIN_OFFER_ROWS, count + 1)


def field_names(rows: int) -> list[str]:
    """Every input name of the form (for placing API errors)."""
    names = [f.name for f in (*CAMPAIGN_FIELDS, *BUDGET_FIELDS, *AUDIENCE_FIELDS)]
    names += ["audience.languages", "audience.linked_only"]
    for i in range(rows):
        names += [f"offers.{i}.{f.name}" for f in OFFER_FIELDS]
    return names


def _value(field: Field, raw: str, zone: ZoneInfo) -> Any:
    """The typed value of a non-empty input, or the text as typed for the API to name."""
    raw = raw.strip()
    try:
        if field.kind == "int":
            return int(raw.replace(",", ""))
        if field.kind == "number":
            return float(raw)
        if field.kind == "datetime":
            return datetime.fromisoformat(raw).replace(tzinfo=zone).isoformat()
    except ValueError:
        return raw
    if field.kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def body_from_form(form: MultiDict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The POST/PATCH body of a submitted form (empty inputs left out)."""
    body: dict[str, Any] = {}
    for field in (*CAMPAIGN_FIELDS, *BUDGET_FIELDS, *AUDIENCE_FIELDS):
        raw = form.get(field.name, "")
        if raw.strip():
            _put(body, field.name, _value(field, raw, zone))
    languages = form.getlist("audience.languages")
    if languages:
        _put(body, "audience.languages", languages)
    if form.get("audience.linked_only"):
        _put(body, "audience.linked_only", True)
    offers = [o for i in range(16) if (o := _offer(form, i, zone)) is not None]
    if offers:
        body["offers"] = offers
    return body


def _offer(form: MultiDict[str, str], i: int, zone: ZoneInfo) -> dict[str, Any] | None:
    prefix = f"offers.{i}."
    typed = [f for f in OFFER_FIELDS if f.kind != "select"]
    if not any(form.get(prefix + f.name, "").strip() for f in typed):
        return None  # an empty row
    offer: dict[str, Any] = {}
    if form.get(prefix + "offer_id"):
        offer["offer_id"] = form[prefix + "offer_id"]
    for field in OFFER_FIELDS:
        raw = form.get(prefix + field.name, "")
        if raw.strip() and field.name != "applies_to.kind":
            _put(offer, field.name, _value(field, raw, zone))
    values = offer.pop("applies_to", {}).get("values")
    kind = form.get(prefix + "applies_to.kind") or "categories"
    offer["applies_to"] = {kind: values} if values is not None else {}
    return offer


def form_from_campaign(campaign: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """The form's values for an existing campaign."""
    values: dict[str, Any] = {}
    for field in (*CAMPAIGN_FIELDS, *BUDGET_FIELDS, *AUDIENCE_FIELDS):
        value = _get(campaign, field.name)
        if value is None:
            continue
        if field.kind == "datetime":
            value = datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        elif field.kind == "list":
            value = ", ".join(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        values[field.name] = str(value)
    audience = campaign.get("audience") or {}
    values["audience.languages"] = audience.get("languages") or []
    values["audience.linked_only"] = bool(audience.get("linked_only"))
    for i, offer in enumerate(o for o in campaign.get("offers", []) if not o.get("withdrawn")):
        kind = "skus" if offer["applies_to"].get("skus") else "categories"
        values |= {
            f"offers.{i}.offer_id": offer["offer_id"],
            f"offers.{i}.title": offer["title"],
            f"offers.{i}.discount.type": offer["discount"]["type"],
            f"offers.{i}.discount.value": str(offer["discount"]["value"]),
            f"offers.{i}.applies_to.kind": kind,
            f"offers.{i}.applies_to.values": ", ".join(offer["applies_to"][kind]),
            f"offers.{i}.min_basket": str(offer["min_basket"]),
            f"offers.{i}.valid_hours": str(offer["valid_hours"]),
        }
    return values


def _get(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)  # type: ignore[assignment]  # walks nested dicts; None ends it
    return data


def changes(body: dict[str, Any], campaign: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body: only what differs from the campaign as it is (a live campaign's fixed
    terms, sent unchanged, would otherwise be a change the API has to judge)."""
    patch: dict[str, Any] = {}
    for key, value in body.items():
        current = campaign.get(key)
        if key in ("budget", "caps"):
            moved = {k: v for k, v in value.items() if (current or {}).get(k) != v}
            if moved:
                patch[key] = moved
        elif key == "offers":
            if _offers_differ(value, current or []):
                patch[key] = value
        elif key == "audience":
            if value != {k: v for k, v in (current or {}).items() if v not in (None, False)}:
                patch[key] = value
        elif key in ("starts_at", "ends_at") and current is not None:
            if datetime.fromisoformat(str(value)) != datetime.fromisoformat(current):
                patch[key] = value
        elif value != current:
            patch[key] = value
    return patch


def _offers_differ(new: list[dict[str, Any]], old: list[dict[str, Any]]) -> bool:
    keys = ("offer_id", "title", "discount", "applies_to", "min_basket", "valid_hours")
    live = [{k: o.get(k) for k in keys} for o in old if not o.get("withdrawn")]
    given = [{k: o.get(k) for k in keys} for o in new]
    for offer in live:
        applies_to = offer["applies_to"] or {}
        offer["applies_to"] = {k: v for k, v in applies_to.items() if v is not None}
    return given != live
