"""shared/fields.py and shared/spreadsheet.py: the bounded types every schema uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from shared.fields import (
    BoundedDatetime,
    Code,
    FiniteFloat,
    Ident,
    LongText,
    Money,
    PlainText,
    UtcDatetime,
    YearMonth,
)
from shared.spreadsheet import csv_text, safe_cell


class Sample(BaseModel):
    at: BoundedDatetime | None = None
    utc: UtcDatetime | None = None
    money: Money | None = None
    ratio: FiniteFloat | None = None
    text: PlainText | None = None
    short: Annotated[PlainText, Field(max_length=5)] | None = None
    long: LongText | None = None
    code: Code | None = None
    ident: Ident | None = None
    period: YearMonth | None = None


def error_fields(**data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Sample.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # overflowed astimezone on a7aaca2
        "9999-12-31T23:59:59-12:00",
        "1999-12-31T23:59:59+00:00",
        "2101-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00",  # naive
    ],
)
def test_datetimes_out_of_bounds_or_naive_name_the_field(value: str) -> None:
    assert error_fields(at=value) == ["at"]
    assert error_fields(utc=value) == ["utc"]


def test_bounded_datetimes_keep_their_offset_and_utc_ones_convert() -> None:
    written = "2026-11-29T10:15:00+09:00"
    s = Sample.model_validate({"at": written, "utc": written})
    assert s.at is not None and s.at.utcoffset() == timedelta(hours=9)
    assert s.utc == datetime(2026, 11, 29, 1, 15, tzinfo=UTC) and s.utc.tzinfo is UTC
    edge = Sample(at=datetime(2100, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))))
    assert edge.at is not None and edge.at.astimezone(UTC).year == 2101  # converts safely


@pytest.mark.parametrize("value", [-1, 10**12 + 1, 10**40, True, 1.5, 100.0, "100"])
def test_money_is_a_bounded_strict_integer(value: object) -> None:
    assert error_fields(money=value) == ["money"]
    assert Sample(money=10**12).money == 10**12


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), True])
def test_finite_float_refuses_what_json_cannot_carry(value: float) -> None:
    assert error_fields(ratio=value) == ["ratio"]
    assert Sample(ratio=2).ratio == 2.0


@pytest.mark.parametrize("bad", ["a\x00b", "tab\there", "line\nbreak", "esc\x1b", "c1\x85"])
def test_plain_text_and_codes_refuse_control_characters(bad: str) -> None:
    assert error_fields(text=bad) == ["text"]
    assert error_fields(code=bad) == ["code"]
    assert error_fields(ident=bad) == ["ident"]


def test_lengths_and_what_each_text_type_allows() -> None:
    assert error_fields(short="toolong") == ["short"]
    assert error_fields(text="") == ["text"]
    assert error_fields(ident="has space") == ["ident"]
    ok = Sample(long="two\nlines\tand a tab", code="ｔｎ－ａｂｃ ｄｅｆ", text="おにぎり 50円引き")
    assert ok.long == "two\nlines\tand a tab"
    assert error_fields(long="nul\x00") == ["long"]


@pytest.mark.parametrize("period", ["9999-12", "0000-01", "0001-01", "1999-12", "2026-13"])
def test_year_month_is_bounded(period: str) -> None:
    assert error_fields(period=period) == ["period"]
    assert Sample(period="2100-12").period == "2100-12"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_neutralised(start: str) -> None:
    formula = f'{start}HYPERLINK("http://x")'
    assert safe_cell(formula) == "'" + formula
    assert csv_text([["name", formula]]).splitlines()[0].startswith("name,\"'")


def test_csv_numbers_and_plain_text_stay_as_they_are() -> None:
    assert [safe_cell(v) for v in (-5, 1.5, None, "spring sale", True)] == [
        -5,
        1.5,
        "",
        "spring sale",
        "True",
    ]
    assert csv_text([["a", -5], ["b", None]]) == "a,-5\nb,\n"
