"""Small propensity models trained once per module: a sound champion and candidate, and a bad one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.dataset import SimWorld, TrainingRows, simulated_rows
from services.campaign_engine.modeling.evaluate import BanditLog, simulate_log
from services.campaign_engine.modeling.train import TrainParams, train_propensity
from shared.model.scoring import PropensityScorer

SMALL = TrainParams(n_estimators=60, num_leaves=15, max_depth=4, min_child_samples=100)
LOGGING = PolicyConfig(mode="epsilon_greedy", epsilon=0.3)
SERVING = PolicyConfig(mode="epsilon_greedy", epsilon=0.05)


@dataclass(frozen=True)
class Models:
    """Three versions in one model directory (CURRENT names the champion)."""

    model_dir: Path
    champion: dict[str, Any]
    good: dict[str, Any]
    shuffled: dict[str, Any]  # trained on the same rows with the labels shuffled


def _train(rows: TrainingRows, model_dir: Path, seed: int, set_current: bool) -> dict[str, Any]:
    return train_propensity(rows, model_dir, SMALL, seed, set_current)


@pytest.fixture(scope="package")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    model_dir = tmp_path_factory.mktemp("models")
    champion = _train(simulated_rows(20_000, seed=61), model_dir, 61, set_current=True)
    rows = simulated_rows(20_000, seed=62)
    good = _train(rows, model_dir, 62, set_current=False)
    labels = np.random.default_rng(63).permutation(rows.y)
    shuffled = _train(replace(rows, y=labels, p_true=None), model_dir, 63, set_current=False)
    return Models(model_dir, champion, good, shuffled)


@pytest.fixture(scope="package")
def logged(models: Models) -> BanditLog:
    """Decisions logged by the champion's exploring policy on customers none of the models saw."""
    champion = PropensityScorer(models.model_dir)
    return simulate_log(SimWorld.create(3000, seed=64), 5000, 64, LOGGING, champion.score)


@pytest.fixture
def registered(models: Models, sessions: Callable[[], Session]) -> Callable[[], Session]:
    """All three versions registered as candidates."""
    with sessions() as session, session.begin():
        for card in (models.champion, models.good, models.shuffled):
            registry.register(session, "propensity", card["version"], card)
    return sessions
