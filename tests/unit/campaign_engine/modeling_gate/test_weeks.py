"""The learning loop over simulated weeks (small N): logs -> retrain -> gate -> CURRENT -> better policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenin.demo.cli import main as demo_main
from tenin.demo.weeks import WeeksOptions, run_weeks
from tenin.demo.weeks_report import write_outputs


def test_two_small_weeks_retrain_promote_and_raise_the_served_profit(tmp_path: Path) -> None:
    said: list[str] = []
    opts = WeeksOptions(weeks=2, decisions_per_week=2500, customers=2500, eval_requests=1500)
    rows = run_weeks(opts, say=said.append)
    assert [r.week for r in rows] == [0, 1, 2]
    first, last = rows[0], rows[-1]
    assert first.served.startswith("propensity (EV)") and first.per_1000 < 0  # the shipped start
    # Week 1 has no uplift champion: its candidate serves; later ones went through the gate.
    assert rows[1].action == "promote" and rows[1].reason is not None
    assert "no model serves yet" in rows[1].reason
    assert rows[2].action in ("promote", "refuse") and rows[2].estimates is not None
    assert rows[2].estimates["champion"]["version"] == rows[1].candidate
    assert last.served.startswith("uplift (T-learner)")  # the scorer reloaded CURRENT
    assert first.per_1000 < last.per_1000 <= last.oracle_per_1000  # better, not past the truth
    assert any("[2/3] judging" in line for line in said)
    paths = write_outputs(rows, tmp_path)
    assert paths["svg"].read_text().lstrip().startswith("<?xml") and paths["png"].stat().st_size > 0
    assert "| 2 | uplift (T-learner)" in paths["md"].read_text()


def test_the_weeks_demo_needs_both_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--weeks", "2"], ["--retrain"], ["--retrain", "--weeks", "0"]):
        with pytest.raises(SystemExit) as stop:
            demo_main(argv)
        assert stop.value.code == 2
    assert "needs both --retrain and --weeks N" in capsys.readouterr().err
