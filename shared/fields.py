"""Bounded field types for every request and message schema (pydantic v2 `Annotated`).

One place for what "a sane value" means at the edge, so a hostile or faulty client
gets a 422 naming the field (docs/interfaces.md § Conventions) instead of an
overflow deep inside, a database error or a 500:

- `BoundedDatetime`: timezone-aware, its year within `MIN_YEAR`..`MAX_YEAR`, the offset
  kept as sent (campaigns remember it; a re-sent transaction's fingerprint must not change),
  so any later `astimezone` is safe. The year is checked on the value as sent, *before*
  any conversion, because `astimezone` overflows on `0001-01-01T00:00:00+01:00` or
  `9999-12-31T23:59:59-12:00`. `UtcDatetime` is the same, converted to UTC.
- `Money`: an integer amount in the minor unit, 0..`MAX_MONEY`; no bools, no floats.
- `FiniteFloat`: a number that is not NaN or ±Infinity (which JSON cannot carry back).
- `PlainText`, `LongText`, `Code`, `Ident`: strings without NUL or other control
  characters, with maximum lengths. Tighten a length with another `Field`, e.g.
  `Annotated[PlainText, Field(max_length=64)]`.
- `YearMonth`: a "YYYY-MM" period whose year is within the same bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field
from pydantic_core import PydanticCustomError

MIN_YEAR = 2000
MAX_YEAR = 2100
MAX_MONEY = 10**12

# Unicode category Cc: C0 controls, DEL and C1 controls.
_NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
# The same, but a line break or a tab is allowed in long free text.
_NO_CONTROL_BUT_LINES = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
_VISIBLE_ASCII = r"^[\x21-\x7e]+$"
YEAR_MONTH_PATTERN = r"^(20\d\d|2100)-(0[1-9]|1[0-2])$"


def bounded(moment: datetime) -> datetime:
    """`moment` unchanged; PydanticCustomError when naive or its year is out of bounds."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PydanticCustomError("timezone_aware", "Input should have timezone info")
    # Checked on the wall-clock year as sent: converting first could overflow.
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "year must be within {min_year}..{max_year}",
            {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return moment


def bounded_utc(moment: datetime) -> datetime:
    """`moment` in UTC, once `bounded` has checked it (so the conversion cannot overflow)."""
    return bounded(moment).astimezone(UTC)


_DATETIME_DOC = Field(description=f"timezone-aware, year {MIN_YEAR}..{MAX_YEAR}")
BoundedDatetime = Annotated[AwareDatetime, AfterValidator(bounded), _DATETIME_DOC]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(bounded_utc), _DATETIME_DOC]

Money = Annotated[
    int, Field(strict=True, ge=0, le=MAX_MONEY, description="minor currency unit (yen)")
]

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]

PlainText = Annotated[str, Field(min_length=1, max_length=200, pattern=_NO_CONTROL)]

LongText = Annotated[str, Field(min_length=1, max_length=2000, pattern=_NO_CONTROL_BUT_LINES)]

# A code as a person may type it (full-width characters and spaces allowed).
Code = Annotated[str, Field(min_length=1, max_length=100, pattern=_NO_CONTROL)]

# A machine identifier: store ids, transaction ids, member numbers.
Ident = Annotated[str, Field(min_length=1, max_length=100, pattern=_VISIBLE_ASCII)]

YearMonth = Annotated[
    str, Field(pattern=YEAR_MONTH_PATTERN, description="YYYY-MM, year 2000..2100")
]
