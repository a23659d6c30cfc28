"""Promote, refuse, force and roll back through the registry; a running scorer follows without a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
from sqlalchemy.orm import Session

from services.campaign_engine.modeling import promotion, registry
from services.campaign_engine.modeling.evaluate import Estimate
from services.campaign_engine.modeling.gate import judge
from shared.model.scoring import PropensityScorer, read_current
from tests.unit.campaign_engine.modeling_gate.conftest import Models

GOOD = judge(Estimate(7.0, 6.5, 7.5, 5000), Estimate(6.8, 6.4, 7.2, 5000), 2.0)
BAD = judge(Estimate(4.0, 2.0, 6.0, 5000), Estimate(6.8, 6.4, 7.2, 5000), 2.0)
FIRST = judge(Estimate(6.8, 6.4, 7.2, 5000), None, 2.0)


def test_refused_forced_and_rolled_back_each_leave_a_record(
    models: Models, registered: Callable[[], Session]
) -> None:
    champ, bad = models.champion["version"], models.shuffled["version"]
    with registered() as session, session.begin():
        first = promotion.promote(
            session, models.model_dir, "propensity", champ, FIRST, actor="ana"
        )
        assert first.action == "promote" and first.from_version is None
        refused = promotion.promote(
            session, models.model_dir, "propensity", bad, BAD, actor="ana", reason="nightly"
        )
        assert refused.action == "refuse" and registry.serving(session, "propensity") == champ
        assert read_current(models.model_dir) == champ
        forced = promotion.promote(
            session, models.model_dir, "propensity", bad, BAD, actor="bo", force=True
        )
        assert forced.action == "promote" and forced.reason.startswith("forced past the gate")
        assert read_current(models.model_dir) == bad
        back = promotion.rollback(
            session, models.model_dir, "propensity", actor="bo", reason="oops"
        )
        assert (back.from_version, back.to_version) == (bad, champ)
        assert read_current(models.model_dir) == champ
        with pytest.raises(promotion.PromotionError, match="no earlier serving version"):
            promotion.rollback(session, models.model_dir, "propensity", actor="bo")
    with registered() as session:
        history = registry.changes(session, "propensity")
    assert [(c.action, c.actor) for c in history] == [
        ("rollback", "bo"),
        ("promote", "bo"),
        ("refuse", "ana"),
        ("promote", "ana"),
    ]
    assert history[2].reason.startswith("nightly; gate: DR lower bound 2.00 is below")
    assert history[2].estimates is not None and history[2].estimates["passed"] is False
    assert all(c.at is not None for c in history)


def test_unknown_or_already_serving_versions_are_errors(
    models: Models, registered: Callable[[], Session]
) -> None:
    with registered() as session, session.begin():
        with pytest.raises(promotion.PromotionError, match="not registered"):
            promotion.promote(session, models.model_dir, "propensity", "prop-x", GOOD, actor="a")
        promotion.promote(
            session, models.model_dir, "propensity", models.good["version"], GOOD, actor="a"
        )
        with pytest.raises(promotion.PromotionError, match="already serves"):
            promotion.promote(
                session, models.model_dir, "propensity", models.good["version"], GOOD, actor="a"
            )


def test_a_running_scorer_switches_to_the_promoted_version_without_a_restart(
    models: Models, registered: Callable[[], Session]
) -> None:
    champ, good = models.champion["version"], models.good["version"]
    with registered() as session, session.begin():
        promotion.promote(session, models.model_dir, "propensity", champ, FIRST, actor="a")
    scorer = PropensityScorer(models.model_dir, reload_interval_s=0.0)
    X = np.random.default_rng(5).random((8, len(models.champion["feature_names"]))).astype("f4")
    before = scorer.score(X)
    seen: list[str] = []
    stop, serving = threading.Event(), threading.Event()

    def serve() -> None:  # a worker's loop: score, and check for a new CURRENT between requests
        while not stop.is_set():
            scorer.maybe_reload()
            scorer.score(X)
            seen.append(scorer.model_version)
            serving.set()
            if scorer.model_version == good:
                return
            stop.wait(0.005)

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        assert serving.wait(timeout=10)
        with registered() as session, session.begin():
            promotion.promote(session, models.model_dir, "propensity", good, GOOD, actor="a")
        worker.join(timeout=10)
    finally:
        stop.set()
        worker.join()
    assert seen[-1] == good and champ in seen  # it served the champion, then the promoted one
    assert not np.allclose(scorer.score(X), before)
