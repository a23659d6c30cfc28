"""`tenin model list|promote|rollback|evaluate --candidate|retrain` end to end on a SQLite log."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from migrations.metadata import target_metadata
from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from shared.db import make_engine, make_session_factory
from shared.model.scoring import PropensityScorer, read_current
from tenin.cli import main as tenin
from tests.unit.campaign_engine.modeling_gate.conftest import Models

START = (datetime.now(UTC) - timedelta(days=45)).replace(microsecond=0)
UNTIL = START + timedelta(days=14)


@dataclass(frozen=True)
class Setup:
    url: str
    model_dir: Path
    models: Models

    def args(self, *extra: str) -> list[str]:
        return [*extra, "--database-url", self.url, "--model-dir", str(self.model_dir)]

    def window(self) -> list[str]:
        return ["--since", START.isoformat(), "--until", UNTIL.isoformat()]

    def history(self) -> list[registry.Change]:
        engine = make_engine(self.url)
        try:
            with make_session_factory(engine)() as session:
                return registry.changes(session, "propensity")
        finally:
            engine.dispose()


@pytest.fixture
def setup(models: Models, tmp_path: Path) -> Iterator[Setup]:
    """4,000 decisions logged by the champion's exploring policy; the three versions registered."""
    model_dir = tmp_path / "models"
    shutil.copytree(models.model_dir, model_dir)
    url = f"sqlite:///{tmp_path / 'tenin.db'}"
    engine = make_engine(url)
    target_metadata.create_all(engine)
    scorer = PropensityScorer(model_dir)
    with engine.begin() as conn:
        write_log(conn, simulated_log(4000, seed=81, start=START, scores=scorer.score))
    with make_session_factory(engine)() as session, session.begin():
        for card in (models.champion, models.good, models.shuffled):
            registry.register(session, "propensity", card["version"], card)
    engine.dispose()
    yield Setup(url, model_dir, models)


def test_promote_refuse_force_rollback_and_list(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    champ, bad = setup.models.champion["version"], setup.models.shuffled["version"]
    window = setup.window()
    assert tenin(["model", "promote", champ, *setup.args("--actor", "ana"), *window]) == 0
    assert tenin(["model", "promote", bad, *setup.args("--reason", "try it"), *window]) == 3
    out = capsys.readouterr().out
    assert "refuse: propensity" in out and "| doubly_robust |" in out
    assert read_current(setup.model_dir) == champ
    forced = ["model", "promote", bad, "--force", *setup.args("--actor", "bo"), *window]
    assert tenin(forced) == 0 and read_current(setup.model_dir) == bad
    assert tenin(["model", "rollback", *setup.args("--actor", "bo", "--reason", "bad")]) == 0
    assert read_current(setup.model_dir) == champ
    history = setup.history()
    assert [c.action for c in history] == ["rollback", "promote", "refuse", "promote"]
    assert history[2].reason.startswith("try it; gate: paired DR lower bound")
    assert history[1].actor == "bo" and history[1].reason.startswith("forced past the gate")
    assert history[3].actor == "ana"
    capsys.readouterr()
    assert tenin(["model", "list", "--json", *setup.args()]) == 0
    listed = json.loads(capsys.readouterr().out)["propensity"]
    serving = [v["version"] for v in listed["versions"] if v["status"] == "serving"]
    assert serving == [champ] and listed["history"][0]["action"] == "rollback"
    assert tenin(["model", "list", "--kind", "propensity", *setup.args()]) == 0
    text = capsys.readouterr().out
    assert f" * {champ}  serving" in text and f"rollback {bad} -> {champ} by bo: bad" in text


def test_evaluate_candidate_prints_both_sides(
    setup: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    champ, good = setup.models.champion["version"], setup.models.good["version"]
    assert tenin(["model", "promote", champ, *setup.args(), *setup.window()]) == 0
    capsys.readouterr()
    out_file = tmp_path / "estimates.json"
    argv = ["model", "evaluate", "--candidate", good, "--out", str(out_file)]
    assert tenin([*argv, *setup.args(), *setup.window()]) == 0
    printed = capsys.readouterr().out
    assert f"candidate {good} vs champion {champ}" in printed
    body = json.loads(out_file.read_text())
    assert body["champion"]["version"] == champ and body["candidate"]["doubly_robust"]["n"] > 3000


def test_unknown_versions_and_nothing_to_roll_back_are_usage_errors(setup: Setup) -> None:
    assert tenin(["model", "promote", "prop-nope", *setup.args(), *setup.window()]) == 2
    assert tenin(["model", "rollback", *setup.args()]) == 2
    assert tenin(["model", "evaluate", "--candidate", "prop-nope", *setup.args()]) == 2


def test_retrain_trains_judges_and_records(
    setup: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    champ = setup.models.champion["version"]
    assert tenin(["model", "promote", champ, *setup.args(), *setup.window()]) == 0
    report = tmp_path / "retrain.json"
    argv = ["model", "retrain", "--kind", "propensity", "--actor", "cron", "--out", str(report)]
    assert tenin([*argv, *setup.args(), *setup.window()]) == 0
    printed = capsys.readouterr().out
    assert "[1/3] training" in printed and "[2/3] judging" in printed and "[3/3]" in printed
    (result,) = json.loads(report.read_text())
    assert result["action"] in ("promote", "refuse") and result["candidate"].startswith("prop-")
    latest = setup.history()[0]
    assert (latest.action, latest.actor, latest.to_version) == (
        result["action"],
        "cron",
        result["candidate"],
    )
    assert latest.estimates is not None and latest.estimates["champion_dr"]["n"] > 0


def test_retrain_reports_a_kind_it_could_not_judge_and_exits_1(
    setup: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    no_models = tmp_path / "empty"  # no propensity model to price the uplift policy's discounts
    no_models.mkdir()
    argv = ["model", "retrain", "--kind", "uplift", "--uplift-dir", str(tmp_path / "uplift")]
    place = ["--database-url", setup.url, "--model-dir", str(no_models), *setup.window()]
    assert tenin([*argv, *place]) == 1
    out = capsys.readouterr().out
    assert "uplift: judging failed" in out and "| uplift | upl-" in out and "| failed |" in out
