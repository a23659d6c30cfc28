"""CSV for people who open it in a spreadsheet: no cell is ever read as a formula.

A cell whose text starts with `=`, `+`, `-` or `@` (or a tab or carriage return, which
some spreadsheets skip before looking) is a formula to Excel, LibreOffice and Google
Sheets; a campaign named `=HYPERLINK(...)` would become a live link in the marketer's
export (CSV injection). Such text gets a leading apostrophe, the OWASP-recommended
neutraliser, which spreadsheets show as plain text. Numbers are written as they are, so
a negative amount stays a number (docs/interfaces.md § Reports and statements).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a CSV cell that a spreadsheet cannot evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = str(value)
        return "'" + text if text.startswith(_FORMULA_STARTS) else text
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text ("\\n" line ends), every cell passed through `safe_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return buf.getvalue()
