"""The promotion gate on real PostgreSQL: promote, refuse a shuffled-label candidate, force,
roll back and retrain through `tenin model`, with the history and CURRENT checked."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from shared.db import make_session_factory
from shared.model.scoring import PropensityScorer, read_current
from tenin.cli import main as tenin
from tests.unit.campaign_engine.modeling_gate.conftest import Models, models  # noqa: F401

START = (datetime.now(UTC) - timedelta(days=45)).replace(microsecond=0)
WINDOW = ["--since", START.isoformat(), "--until", (START + timedelta(days=14)).isoformat()]


def test_the_gate_on_postgres(models: Models, fresh_db: str, tmp_path: Path) -> None:  # noqa: F811
    model_dir = tmp_path / "models"
    shutil.copytree(models.model_dir, model_dir)
    db = create_engine(fresh_db)
    try:
        with db.begin() as conn:
            scores = PropensityScorer(model_dir).score
            # 6,000 decisions over two to six offers each: the shuffled candidate falls ~2.5 yen
            # per decision short, and was refused in 40 of 40 such simulated logs (a sound one
            # in 1 of 40); with 4,000 decisions over two to four offers it can slip through.
            log = simulated_log(6000, seed=91, start=START, scores=scores, candidates=(2, 6))
            write_log(conn, log)
        with make_session_factory(db)() as session, session.begin():
            for card in (models.champion, models.shuffled):
                registry.register(session, "propensity", card["version"], card)
        place = ["--database-url", fresh_db, "--model-dir", str(model_dir), *WINDOW]
        champ, bad = models.champion["version"], models.shuffled["version"]

        assert tenin(["model", "promote", champ, "--actor", "ops", *place]) == 0
        assert tenin(["model", "promote", bad, "--actor", "ops", *place]) == 3
        assert read_current(model_dir) == champ
        assert tenin(["model", "promote", bad, "--force", "--reason", "drill", *place]) == 0
        assert read_current(model_dir) == bad
        assert (
            tenin(["model", "rollback", "--database-url", fresh_db, "--model-dir", str(model_dir)])
            == 0
        )
        assert read_current(model_dir) == champ
        retrain = ["model", "retrain", "--kind", "propensity", "--actor", "cron", *place]
        assert tenin(retrain) == 0

        with make_session_factory(db)() as session:
            history = registry.changes(session, "propensity")
            serving = registry.serving(session, "propensity")
        actions = [(c.action, c.actor) for c in history]
        assert actions[1:] == [
            ("rollback", actions[1][1]),
            ("promote", actions[2][1]),
            ("refuse", "ops"),
            ("promote", "ops"),
        ]
        assert actions[0][0] in ("promote", "refuse") and actions[0][1] == "cron"
        assert history[2].reason.startswith("forced past the gate; drill; gate:")
        assert history[3].estimates and history[3].estimates["difference_dr"]["n"] == 6000
        assert serving == read_current(model_dir)  # the database and CURRENT agree
    finally:
        db.dispose()
