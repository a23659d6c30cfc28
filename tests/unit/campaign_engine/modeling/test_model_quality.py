"""The shipped model against the simulator's hidden truth; off-policy estimates; decision-log training rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import create_engine, text

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling.cli import evaluate_main, train_main
from services.campaign_engine.modeling.dataset import (
    SimWorld,
    rows_from_decision_log,
    simulated_rows,
)
from services.campaign_engine.modeling.evaluate import (
    estimate,
    log_from_decision_log,
    simulate_log,
)
from shared.config import DEFAULT_MODEL_DIR
from shared.model.features import N_FEATURES
from shared.model.scoring import PropensityScorer

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scorer() -> PropensityScorer:
    return PropensityScorer(DEFAULT_MODEL_DIR)


def test_shipped_model_ranks_redemptions_like_the_hidden_truth(scorer: PropensityScorer) -> None:
    """Fresh customers (another seed than training), outcomes drawn from the hidden truth."""
    rows = simulated_rows(30_000, seed=4242)
    assert rows.p_true is not None
    p = scorer.score(rows.X)
    auc = roc_auc_score(rows.y, p)
    ceiling = roc_auc_score(rows.y, rows.p_true)  # no model can beat ranking by the truth itself
    corr = np.corrcoef(p, rows.p_true)[0, 1]
    print(
        f"\nshipped model AUC {auc:.3f} (truth as a score: {ceiling:.3f}); corr with truth {corr:.3f}; "
        f"mean predicted {p.mean():.4f} vs observed {rows.y.mean():.4f}"
    )
    assert auc >= 0.78
    assert ceiling - auc < 0.10
    assert abs(p.mean() - rows.y.mean()) < 0.01  # calibrated in the large
    assert scorer.card["max_parity_gap"] <= 1e-5 and scorer.card["training_rows"] >= 100_000


@pytest.fixture(scope="module")
def uniform_log(scorer: PropensityScorer):
    world = SimWorld.create(4000, seed=77)
    return simulate_log(
        world, 12_000, seed=77, logging_config=PolicyConfig(mode="epsilon_greedy", epsilon=1.0)
    )


@pytest.mark.parametrize(
    "config",
    [PolicyConfig(mode="greedy"), PolicyConfig(mode="softmax", temperature=5.0)],
    ids=["greedy", "softmax"],
)
def test_ips_recovers_a_known_policys_true_value(
    uniform_log, scorer: PropensityScorer, config
) -> None:
    """Logged by a uniformly random policy; the candidate's true value comes from the hidden truth."""
    est = estimate(uniform_log, scorer.score(uniform_log.X), config)
    truth = est["truth_candidate"].value
    for name in ("ips", "snips", "doubly_robust"):
        assert est[name].covers(truth), (name, est[name], truth)
    # The intervals are informative: they separate the candidate from the random logging policy.
    assert not est["ips"].covers(est["truth_logging"].value)
    assert est["doubly_robust"].high - est["doubly_robust"].low < est["ips"].high - est["ips"].low
    print(
        f"\n{config.mode}: true {truth:.2f} yen/decision; IPS {est['ips'].value:.2f} "
        f"[{est['ips'].low:.2f}, {est['ips'].high:.2f}]; DR {est['doubly_robust'].value:.2f}; "
        f"logging policy {est['logging_policy'].value:.2f}"
    )


def test_logged_propensities_are_used_not_assumed(uniform_log, scorer: PropensityScorer) -> None:
    """Halving every logged propensity doubles IPS: the estimator really reads the log."""
    from dataclasses import replace

    p_hat = scorer.score(uniform_log.X)
    greedy = PolicyConfig(mode="greedy")
    base = estimate(uniform_log, p_hat, greedy)["ips"].value
    skewed = estimate(replace(uniform_log, propensity=uniform_log.propensity / 2), p_hat, greedy)[
        "ips"
    ].value
    assert skewed == pytest.approx(2 * base)


def _decision_log(path: Path) -> str:
    url = f"sqlite:///{path}"
    with create_engine(url).begin() as conn:
        conn.execute(
            text("""CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, request_id TEXT,
            customer_id TEXT, campaign_id TEXT, offer_id TEXT, arm TEXT, propensity REAL, score REAL,
            model_version TEXT, features TEXT, coupon_code TEXT, expires_at TIMESTAMP, decided_at TIMESTAMP)""")
        )
        conn.execute(
            text(
                "CREATE TABLE redemptions_seen (coupon_code TEXT, redeemed_at TIMESTAMP, voided BOOLEAN)"
            )
        )
        # No drop asked for any of these decisions: every message cost is 0.
        conn.execute(text("CREATE TABLE drop_members (drop_id TEXT, request_id TEXT)"))
        conn.execute(text("CREATE TABLE drops (drop_id TEXT, campaign_id TEXT)"))
        conn.execute(text("CREATE TABLE campaigns (campaign_id TEXT, message_cost INTEGER)"))
        rows = simulated_rows(400, seed=5)
        for i in range(len(rows)):
            decided = NOW - timedelta(days=10) + timedelta(minutes=i)
            arm = ("holdout", "none", "treatment", "treatment", "explore")[i % 5]
            code = f"TN-{i:04d}" if arm in ("treatment", "explore") else None
            conn.execute(
                text("""INSERT INTO decisions VALUES (:id, :rid, :cid, 'camp', :oid, :arm, :prop, 0.1,
                'prop-test', :features, :code, :expires, :decided)"""),
                {
                    "id": f"d{i}",
                    "rid": f"r{i}",
                    "cid": f"c{i}",
                    "oid": "o1" if code else None,
                    "arm": arm,
                    "prop": 0.9 if arm == "treatment" else 0.05,
                    "features": json.dumps(rows.X[i].tolist()) if arm != "holdout" else None,
                    "code": code,
                    "expires": (decided + timedelta(days=3)).isoformat() if code else None,
                    "decided": decided.isoformat(),
                },
            )
            if code and rows.y[i]:
                late = i % 7 == 0  # used after expiry: does not count
                at = decided + (timedelta(days=4) if late else timedelta(hours=5))
                conn.execute(
                    text("INSERT INTO redemptions_seen VALUES (:c, :at, :v)"),
                    {"c": code, "at": at.isoformat(), "v": i % 11 == 0},
                )
        # Still running: its window is open, so its outcome is not known yet.
        conn.execute(
            text("""INSERT INTO decisions VALUES ('open', 'r', 'c', 'camp', 'o1', 'treatment', 0.9,
            0.1, 'prop-test', :f, 'TN-open', :e, :d)"""),
            {
                "f": json.dumps(rows.X[0].tolist()),
                "e": (NOW + timedelta(days=1)).isoformat(),
                "d": (NOW - timedelta(days=2)).isoformat(),
            },
        )
    return url


def test_training_rows_from_the_decision_log(tmp_path: Path) -> None:
    url = _decision_log(tmp_path / "log.db")
    with create_engine(url).connect() as conn:
        rows = rows_from_decision_log(conn, schema=None, now=NOW)
    source = simulated_rows(400, seed=5)
    issued = [i for i in range(400) if i % 5 in (2, 3, 4)]
    assert len(rows) == len(issued)  # the open window and uncouponed arms are left out
    np.testing.assert_array_equal(rows.X, source.X[issued])
    expected = [bool(source.y[i]) and i % 7 != 0 and i % 11 != 0 for i in issued]
    assert rows.y.tolist() == [int(e) for e in expected]
    assert rows.X.dtype == np.float32 and rows.X.shape[1] == N_FEATURES


def test_evaluate_and_train_run_from_a_decision_log(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = _decision_log(tmp_path / "log.db")
    with create_engine(url).connect() as conn:
        bandit, partial = log_from_decision_log(conn, NOW)
    assert len(bandit) == 320 and partial == 320  # holdout and the open window left out
    assert set(bandit.chosen.tolist()) == {-1, 0}
    assert (
        evaluate_main(
            ["--from", "decision-log", "--database-url", url, "--out", str(tmp_path / "e.json")]
        )
        == 0
    )
    report = json.loads((tmp_path / "e.json").read_text())
    assert {"ips", "snips", "doubly_robust", "logging_policy"} <= set(report)
    code = train_main(
        [
            "--from",
            "decision-log",
            "--database-url",
            url,
            "--model-dir",
            str(tmp_path / "m"),
            "--trees",
            "20",
        ]
    )
    assert code == 0
    card = PropensityScorer(tmp_path / "m").card
    assert card["source"] == "decision-log" and card["training_rows"] == 192
    capsys.readouterr()
