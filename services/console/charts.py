"""Server-side SVG charts for the console (docs/console.md § Pages).

The colours and the kinds of chart follow the tracker's report page
(services/redemption_tracker/reports/charts.py), but the console draws its own: it may not
import another service, and SVG needs no plotting library, scales with the page and is
read out by screen readers through its `aria-label` and `<title>`. No inline style
attributes: the console's CSP allows none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

TEAL, CORAL, GREY, GOLD = "#1b9e8f", "#e5735c", "#9aa5b1", "#e0a82e"
WIDTH = 640
Fmt = Callable[[float], str]


def _svg(label: str, height: int, body: list[str]) -> Markup:
    title = escape(label)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{title}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, content: str, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(content)}</text>'


def hbars(label: str, rows: Sequence[tuple[str, float, str]], fmt: Fmt) -> Markup:
    """Horizontal bars: (name, value, colour) per row, each value written at its end."""
    row_h, left, right = 30, 260, 110
    top = max((max(v, 0) for _, v, _ in rows), default=0) or 1
    body = []
    for i, (name, value, colour) in enumerate(rows):
        y = 10 + i * row_h
        w = (WIDTH - left - right) * max(value, 0) / top
        body.append(_text(left - 8, y + 18, name, "end"))
        body.append(
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" fill="{colour}"/>'
        )
        body.append(_text(left + w + 6, y + 18, fmt(value)))
    return _svg(label, 20 + row_h * len(rows), body)


def daily_bars(
    label: str, days: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]]
) -> Markup:
    """Grouped vertical bars per day: (name, values, colour) per series, with a legend."""
    height, base, left = 240, 200, 40
    top = max((v for _, values, _ in series for v in values), default=0) or 1
    slot = (WIDTH - left - 10) / max(len(days), 1)
    bar = max(2.0, slot * 0.8 / max(len(series), 1))
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="{GREY}"/>']
    body.append(_text(left - 4, 20, f"{top:,.0f}", "end", "axis"))
    for d, day in enumerate(days):
        x0 = left + d * slot + slot * 0.1
        for s, (_, values, colour) in enumerate(series):
            h = (base - 30) * values[d] / top
            body.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
        if len(days) <= 14 or d % max(1, len(days) // 7) == 0:
            body.append(_text(x0 + slot * 0.4, base + 16, day[5:], "middle", "axis"))
    body += _legend([(name, colour) for name, _, colour in series], height - 12)
    return _svg(label, height, body)


def lines(
    label: str, points: int, series: Sequence[tuple[str, Sequence[float], str]], fmt: Fmt
) -> Markup:
    """Lines over `points` steps (e.g. actual against ideal), with a legend."""
    height, base, left = 240, 200, 70
    top = max((v for _, values, _ in series for v in values), default=0) or 1
    step = (WIDTH - left - 10) / max(points - 1, 1)
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="{GREY}"/>']
    body.append(_text(left - 4, 34, fmt(top), "end", "axis"))
    for _, values, colour in series:
        coords = " ".join(
            f"{left + i * step:.1f},{base - (base - 30) * v / top:.1f}"
            for i, v in enumerate(values)
        )
        body.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
    body += _legend([(name, colour) for name, _, colour in series], height - 12)
    return _svg(label, height, body)


def interval(
    label: str, treatment: float, holdout: float, low: float | None, high: float | None, fmt: Fmt
) -> Markup:
    """Treatment and holdout spend per customer, and their difference with its interval."""
    rows = hbars(label, [("treatment", treatment, TEAL), ("holdout", holdout, GREY)], fmt)
    if low is None or high is None:
        return rows
    span = max(abs(low), abs(high), abs(treatment - holdout), 1)
    mid, half = WIDTH / 2, (WIDTH / 2 - 90)

    def x(v: float) -> float:
        return mid + half * v / span

    diff = treatment - holdout
    body = [
        f'<line x1="{mid}" y1="10" x2="{mid}" y2="50" stroke="{GREY}"/>',
        f'<line x1="{x(low):.1f}" y1="30" x2="{x(high):.1f}" y2="30" stroke="{CORAL}" stroke-width="3"/>',
        f'<circle cx="{x(diff):.1f}" cy="30" r="6" fill="{CORAL}"/>',
        _text(x(low), 62, fmt(low), "middle", "axis"),
        _text(x(high), 62, fmt(high), "middle", "axis"),
    ]
    whisker = _svg(f"{label}: difference per customer, 95% interval", 72, body)
    return Markup(rows + whisker)


def _legend(items: Sequence[tuple[str, str]], y: float) -> list[str]:
    body, x = [], 50.0
    for name, colour in items:
        body.append(f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(x + 18, y, name))
        x += 30 + 8 * len(name)
    return body
