"""CI's smoke run of the main job: `tenin demo` at a small size on the embedded default.

It checks that the report exists, embeds its charts, and shows the same numbers as the
API's report it was drawn from (the demo itself refuses to finish until the API's
redemption count equals what the tills redeemed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.redemption_tracker.reports.charts import summary_rows

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_the_demo_runs_and_its_report_agrees_with_the_api(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "TENIN_TOPIC_NAMESPACE")
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tenin.cli",
            "demo",
            "--customers",
            "40",
            "--days",
            "2",
            "--seed",
            "3",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (tmp_path / "report.html").read_text("utf-8")
    report = json.loads((tmp_path / "report.json").read_text("utf-8"))

    assert page.count("data:image/png;base64,") >= 3, "the charts are embedded in the page"
    assert "http://" not in page and "https://" not in page, "the page fetches nothing"
    for label, value, _ in summary_rows(report):
        assert f"<th>{label}</th><td>{value}</td>" in page.replace("&#x27;", "'"), label
    counts = report["counts"]
    assert counts["decisions"] > 0 and counts["issued"] > 0
    assert counts["delivered"] == counts["issued"]
    assert "redeemed (rate)" in done.stdout
    assert f"{counts['redeemed']:,} (" in done.stdout, "the printed summary matches the API"
