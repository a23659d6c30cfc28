"""Logged-bandit files (CSV, Parquet): read, checked, and estimated exactly like the in-memory log."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import bandit_files
from services.campaign_engine.modeling.dataset import SimWorld
from services.campaign_engine.modeling.evaluate import (
    BanditLog,
    Estimate,
    estimate,
    simulate_log,
    target_probabilities,
)
from shared.config import DEFAULT_MODEL_DIR
from shared.model.scoring import PropensityScorer, read_current
from tenin.cli import main as tenin

POLICY = PolicyConfig(mode="softmax", temperature=5.0)
ESTIMATES = ("ips", "snips", "doubly_robust")


@pytest.fixture(scope="module")
def scorer() -> PropensityScorer:
    return PropensityScorer(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def log(scorer: PropensityScorer) -> BanditLog:
    logging = PolicyConfig(mode="epsilon_greedy", epsilon=0.5)
    return simulate_log(SimWorld.create(2000, 71), 600, 71, logging, scorer.score)


def _same(a: dict[str, Estimate], b: dict[str, Estimate]) -> None:
    for name in ESTIMATES:
        assert (a[name].value, a[name].low) == pytest.approx((b[name].value, b[name].low), rel=1e-6)


def test_a_csv_with_a_policy_model_estimates_what_the_log_does(
    tmp_path: Path, log: BanditLog, scorer: PropensityScorer
) -> None:
    path = tmp_path / "logged.csv"
    bandit_files.write_csv(path, log)
    f = bandit_files.read(path)
    assert len(f) == len(log) and f.X is not None and f.target is None
    assert (f.chosen == log.chosen).all() and (f.chosen == -1).any()  # no-coupon decisions too
    p_hat = scorer.score(f.X)
    _same(bandit_files.estimate_file(f, p_hat, POLICY), estimate(log, p_hat, POLICY))


def test_target_probabilities_in_the_file_drive_the_estimate(
    tmp_path: Path, log: BanditLog, scorer: PropensityScorer
) -> None:
    p_hat = scorer.score(log.X)
    probs = target_probabilities(log, p_hat, POLICY)
    path = tmp_path / "with_target.csv"
    bandit_files.write_csv(path, log, target=[p[:-1] for p in probs])
    f = bandit_files.read(path)
    _same(bandit_files.estimate_file(f, p_hat, POLICY), estimate(log, p_hat, POLICY))
    # Without a policy model: IPS and SNIPS as before, DR falls back to IPS.
    alone = bandit_files.estimate_file(f, None, POLICY)
    want = estimate(log, p_hat, POLICY)
    assert alone["ips"].value == pytest.approx(want["ips"].value)
    assert alone["doubly_robust"].value == pytest.approx(alone["ips"].value)


def test_parquet_reads_the_same_as_csv(tmp_path: Path, log: BanditLog) -> None:
    csv_path, pq_path = tmp_path / "l.csv", tmp_path / "l.parquet"
    bandit_files.write_csv(csv_path, log)
    pa_csv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa_csv.read_csv(csv_path), pq_path)
    a, b = bandit_files.read(csv_path), bandit_files.read(pq_path)
    assert a.X is not None and b.X is not None
    np.testing.assert_array_equal(a.chosen, b.chosen)
    np.testing.assert_allclose(a.X, b.X)
    np.testing.assert_allclose(a.reward, b.reward)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("decision_id,chosen,reward\nd1,1,3\n", "missing column(s): propensity"),
        ("decision_id,chosen,propensity,reward\nd1,1,0,3\n", "line 2, column propensity"),
        ("decision_id,chosen,propensity,reward\nd1,1,0.5,abc\n", "line 2, column reward"),
        ("decision_id,chosen,propensity,reward\nd1,2,0.5,1\n", "line 2, column chosen"),
        ("decision_id,chosen,propensity,reward\nd1,1,.5,1\nd1,1,.5,1\n", "2 rows have chosen"),
        ("decision_id,chosen,propensity,reward\n", "no decisions"),
    ],
)
def test_bad_files_are_refused_naming_the_line_and_column(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(bandit_files.BanditFileError, match=re.escape(message)):
        bandit_files.read(path)


def test_without_features_or_target_there_is_nothing_to_estimate(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    path.write_text("decision_id,chosen,propensity,reward\nd1,1,0.5,100\n", encoding="utf-8")
    with pytest.raises(bandit_files.BanditFileError, match="name a --policy model"):
        bandit_files.estimate_file(bandit_files.read(path), None, POLICY)


def test_without_pyarrow_a_parquet_file_is_refused_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    (tmp_path / "l.parquet").write_bytes(b"PAR1")
    with pytest.raises(bandit_files.BanditFileError, match="needs pyarrow"):
        bandit_files.read(tmp_path / "l.parquet")


def test_the_command_line_prints_the_estimates(
    tmp_path: Path, log: BanditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logged.csv"
    bandit_files.write_csv(path, log)
    version = read_current(DEFAULT_MODEL_DIR)
    argv = ["model", "evaluate", "--logs", str(path), "--policy", version, "--mode", "softmax"]
    assert tenin([*argv, "--temperature", "5", "--model-dir", str(DEFAULT_MODEL_DIR)]) == 0
    out = capsys.readouterr().out
    assert f"candidate model {version}, policy softmax" in out and "| doubly_robust |" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("decision_id,chosen\nd1,1\n", encoding="utf-8")
    assert tenin(["model", "evaluate", "--logs", str(bad), "--policy", version]) == 2
