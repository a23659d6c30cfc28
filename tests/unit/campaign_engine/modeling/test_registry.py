"""The model registry: candidates, serving, CURRENT and the promotion history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from services.campaign_engine.modeling import registry
from shared.model.scoring import read_current


def _artifact(model_dir: Path, version: str) -> dict[str, object]:
    card = {"kind": "propensity", "version": version, "metrics": {"auc": 0.8}}
    (model_dir / version).mkdir(parents=True)
    (model_dir / version / "card.json").write_text(json.dumps(card))
    return card


def test_registered_versions_are_candidates_until_set_serving(
    sessions: Callable[[], Session], tmp_path: Path
) -> None:
    with sessions() as session, session.begin():
        registry.register(session, "propensity", "v1", _artifact(tmp_path, "v1"))
        registry.register(session, "propensity", "v2", _artifact(tmp_path, "v2"))
        assert registry.serving(session, "propensity") is None
        assert {v.status for v in registry.versions(session, "propensity")} == {"candidate"}
        assert registry.versions(session, "propensity")[0].metrics == {"auc": 0.8}

        assert registry.set_serving(session, tmp_path, "propensity", "v1") is None
        assert read_current(tmp_path) == "v1"
        assert registry.set_serving(session, tmp_path, "propensity", "v2") == "v1"
    with sessions() as session:
        assert registry.serving(session, "propensity") == "v2"
        status = {v.version: v.status for v in registry.versions(session, "propensity")}
        assert status == {"v1": "retired", "v2": "serving"}
        assert registry.serving(session, "uplift") is None
    assert read_current(tmp_path) == "v2"


def test_register_twice_is_a_no_op_but_a_different_card_is_refused(
    sessions: Callable[[], Session], tmp_path: Path
) -> None:
    card = _artifact(tmp_path, "v1")
    with sessions() as session, session.begin():
        registry.register(session, "propensity", "v1", card)
        registry.register(session, "propensity", "v1", card)
        assert len(registry.versions(session, "propensity")) == 1
        with pytest.raises(registry.RegistryError, match="another card"):
            registry.register(session, "propensity", "v1", {**card, "rows": 3})


def test_set_serving_refuses_unknown_versions_and_missing_artifacts(
    sessions: Callable[[], Session], tmp_path: Path
) -> None:
    with sessions() as session, session.begin():
        with pytest.raises(registry.RegistryError, match="not registered"):
            registry.set_serving(session, tmp_path, "propensity", "nope")
        registry.register(session, "uplift", "u1", {"kind": "uplift"})
        with pytest.raises(registry.RegistryError, match="no artifact"):
            registry.set_serving(session, tmp_path, "uplift", "u1")
        with pytest.raises(registry.RegistryError, match="unknown model kind"):
            registry.versions(session, "ranking")
    assert not (tmp_path / "CURRENT").exists()


def test_changes_are_recorded_with_who_why_and_estimates(
    sessions: Callable[[], Session],
) -> None:
    with sessions() as session, session.begin():
        registry.record_change(
            session, "propensity", None, "v1", "promote", "ops@example", "first", None
        )
        registry.record_change(
            session, "propensity", "v1", "v2", "refuse", "cron", "DR low", {"dr": [1.0, 2.0]}
        )
        with pytest.raises(registry.RegistryError, match="unknown action"):
            registry.record_change(session, "propensity", "v1", "v2", "merge", "x", "y", None)
    with sessions() as session:
        history = registry.changes(session, "propensity")
    assert [(c.action, c.actor, c.to_version) for c in history] == [
        ("refuse", "cron", "v2"),
        ("promote", "ops@example", "v1"),
    ]
    assert history[0].estimates == {"dr": [1.0, 2.0]} and history[0].at.tzinfo is not None
