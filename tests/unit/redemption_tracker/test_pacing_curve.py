"""The report's pacing curve (pure): cumulative coupons and money against the even line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.redemption_tracker.reports.charts import pacing_svg
from services.redemption_tracker.reports.pacing import committed_at_issue, curve, moments

START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=10)


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def test_the_curve_counts_what_was_issued_by_each_moment_against_the_even_line() -> None:
    issued = [(day(0.5), 50), (day(1), 50), (day(4), 100), (day(4.5), 100)]
    points = curve(issued, START, END, day(5), {"max_coupons": 20}, points=6)
    assert [p["at"] for p in points] == [day(d).isoformat() for d in (0, 1, 2, 3, 4, 5)]
    assert [p["coupons"] for p in points] == [0, 2, 2, 2, 3, 4]
    assert [p["committed"] for p in points] == [0, 100, 100, 100, 200, 300]
    assert [p["ideal_coupons"] for p in points] == [0, 2, 4, 6, 8, 10]
    assert all(p["ideal_committed"] is None for p in points)  # no money budget


def test_the_curve_stops_at_the_window_end_and_starts_at_its_start() -> None:
    assert moments(START, END, day(30), 3) == [day(0), day(5), day(10)]
    assert moments(START, END, day(-2), 3) == [START]


def test_committed_money_is_the_face_value_the_engine_reserves() -> None:
    assert committed_at_issue({"type": "amount", "value": 50}, 0) == 50
    assert committed_at_issue({"type": "free_item", "value": 150}, 0) == 150
    # 10% of the larger of the minimum basket and a typical ¥750 basket.
    assert committed_at_issue({"type": "percent", "value": 10}, 300) == 75
    assert committed_at_issue({"type": "percent", "value": 10}, 2000) == 200
    assert committed_at_issue(None, None) == 0


def test_the_svg_draws_the_actual_curve_and_the_even_line() -> None:
    issued = [(day(1), 50), (day(2), 50)]
    pacing = {
        "mode": "even",
        "max_coupons": 20,
        "max_discount_total": None,
        "points": curve(issued, START, END, day(5), {"max_coupons": 20}, points=6),
    }
    svg = pacing_svg(pacing)
    assert svg is not None and svg.startswith("<svg") and svg.endswith("</svg>")
    assert "class='ideal'" in svg and "class='actual'" in svg and "Pacing (even)" in svg
    polyline = svg.split("class='actual'")[1].split("points='")[1].split("'")[0]
    assert len(polyline.split()) == 6
    assert pacing_svg({"points": []}) is None


def test_a_campaign_capped_only_in_money_is_drawn_in_yen() -> None:
    budget = {"max_coupons": None, "max_discount_total": 1000}
    points = curve([(day(1), 300)], START, END, day(5), budget, points=3)
    assert [p["ideal_committed"] for p in points] == [0, 250, 500]
    svg = pacing_svg({"mode": "asap", **budget, "points": points})
    assert svg is not None and "yen committed" in svg and "class='ideal'" in svg
