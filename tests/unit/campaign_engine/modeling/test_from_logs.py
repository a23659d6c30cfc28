"""Training from the decision log: weights, rows, the card, the registry, and the CLI end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from migrations.metadata import target_metadata
from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.cli import train_main
from services.campaign_engine.modeling.from_logs import (
    MAX_IPW,
    ipw_weights,
    train_from_logs,
    uplift_rows,
)
from services.campaign_engine.modeling.outcomes import logged_outcomes
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from shared.db import make_engine, make_session_factory
from shared.model.scoring import PropensityScorer, UpliftScorer, load_version

START = datetime(2026, 10, 1, tzinfo=UTC)
SINCE, UNTIL = START, START + timedelta(days=14)
NOW = START + timedelta(days=30)


@pytest.fixture(scope="module")
def logged_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    """A SQLite database file holding 3,000 simulated logged decisions."""
    path = tmp_path_factory.mktemp("log") / "tenin.db"
    url = f"sqlite:///{path}"
    db = make_engine(url)
    target_metadata.create_all(db)
    with db.begin() as conn:
        write_log(conn, simulated_log(3000, seed=5, start=START))
    yield db, url
    db.dispose()


def test_ipw_weights_are_clipped_and_mean_one() -> None:
    w = ipw_weights(np.array([1.0, 0.5, 0.1, 0.001]))
    raw = np.array([1.0, 2.0, 10.0, MAX_IPW])
    assert np.allclose(w, raw / raw.mean()) and w.mean() == pytest.approx(1.0)
    assert np.allclose(ipw_weights(np.ones(5)), 1.0)


def test_uplift_rows_take_holdout_and_no_coupon_as_control(logged_db: tuple[Engine, str]) -> None:
    db, _ = logged_db
    with db.connect() as conn:
        logged = logged_outcomes(conn, since=SINCE, until=UNTIL, now=NOW)
    rows = uplift_rows(logged)
    reasons = set(logged.reason[~logged.treated])
    assert reasons == {"holdout", "policy_chose_none"}
    assert len(rows.X) == len(logged) and rows.treated.sum() == logged.treated.sum()
    # Randomised holdout vs treated: spend is in yen, and the treated are not all redeemers.
    assert rows.spend[~rows.treated].mean() > 0 and 0 < rows.redeemed.mean() < 1


def test_propensity_from_logs_writes_a_candidate_with_its_card(
    logged_db: tuple[Engine, str], tmp_path: Path
) -> None:
    db, _ = logged_db
    with db.begin() as conn:
        trained = train_from_logs(
            conn, kind="propensity", since=SINCE, until=UNTIL, model_dir=tmp_path, now=NOW
        )
    card = trained.card
    assert trained.path == tmp_path / trained.version and not (tmp_path / "CURRENT").exists()
    assert load_version(tmp_path, trained.version, "propensity").version == trained.version
    assert card["data_window"]["since"] == SINCE.isoformat() and card["source"] == "decision-log"
    balance = card["class_balance"]
    assert balance["redeemed"] > 0 and balance["redeemed"] + balance["not_redeemed"] == card["rows"]
    auc = card["metrics"]["auc"]
    assert auc["low"] <= auc["value"] <= auc["high"] and auc["value"] > 0.55
    assert card["weights"]["scheme"].startswith("1/propensity") and card["max_parity_gap"] <= 1e-5
    assert card["parent_version"] is None and card["logging_model_versions"] == ["sim-logging"]
    with make_session_factory(db)() as session:
        [row] = registry.versions(session, "propensity")
        assert (row.version, row.status) == (trained.version, "candidate")
        assert registry.serving(session, "propensity") is None
        registry.set_serving(session, tmp_path, "propensity", trained.version)
        session.commit()
    # The next version names the serving one as its parent.
    with db.begin() as conn:
        child = train_from_logs(
            conn, kind="propensity", since=SINCE, until=UNTIL, model_dir=tmp_path, now=NOW, seed=8
        )
    assert child.card["parent_version"] == trained.version
    assert PropensityScorer(tmp_path).model_version == trained.version


def test_too_few_rows_is_an_error_not_a_model(
    logged_db: tuple[Engine, str], tmp_path: Path
) -> None:
    db, _ = logged_db
    with db.begin() as conn, pytest.raises(ValueError, match="at least 50"):
        train_from_logs(
            conn,
            kind="propensity",
            since=SINCE,
            until=SINCE + timedelta(hours=1),
            model_dir=tmp_path,
            now=NOW,
        )
    assert not any(tmp_path.iterdir())


def test_cli_trains_uplift_from_logs_end_to_end(
    logged_db: tuple[Engine, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = logged_db
    code = train_main(
        [
            "--from-logs",
            "--uplift",
            "--database-url",
            url,
            "--since",
            SINCE.isoformat(),
            "--until",
            UNTIL.isoformat(),
            "--model-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["kind"] == "uplift" and summary["status"] == "candidate"
    assert summary["metrics"]["observed_spend_difference"]["value"] is not None
    (tmp_path / "CURRENT").write_text(summary["version"])
    treated, control = UpliftScorer(tmp_path).score(np.zeros((3, 19), dtype=np.float32))
    assert treated.shape == control.shape == (3,)


def test_cli_names_a_time_without_offset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train_main(["--from-logs", "--since", "2026-10-01T00:00:00"])
    assert "--since" in capsys.readouterr().err
