"""Fixtures for the insight tests: a small real model on disk, an app on SQLite with a key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import Session

from migrations.metadata import target_metadata
from services.campaign_engine.app import create_app
from services.campaign_engine.bootstrap import Engine, bootstrap
from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import artifacts
from services.campaign_engine.modeling.train import TrainParams, fit_lightgbm
from shared.auth import create_key
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.model.features import FEATURE_NAMES, N_FEATURES
from shared.model.scoring import PropensityScorer

FREQUENCY = FEATURE_NAMES.index("frequency_per_week")


def synthetic_rows(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows where visits per week decide redemption and nothing else matters much."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, N_FEATURES)).astype(np.float32)
    x[:, FREQUENCY] = rng.uniform(0.0, 6.0, n)
    p = 1.0 / (1.0 + np.exp(-(x[:, FREQUENCY] - 3.0) * 1.5))
    return x, (rng.uniform(size=n) < p).astype(int)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A propensity model version written as `tenin model train` writes one."""
    root = tmp_path_factory.mktemp("models")
    x, y = synthetic_rows(4000)
    model = fit_lightgbm(x, y, TrainParams(n_estimators=40, min_child_samples=20), seed=1)
    onnx_bytes = artifacts.to_onnx(model)
    version = artifacts.new_version("prop", onnx_bytes)
    card = {
        "version": version,
        "kind": "propensity",
        "feature_names": list(FEATURE_NAMES),
        "files": {"model": "model.onnx"},
    }
    artifacts.write_version(root, version, {"model.onnx": onnx_bytes}, card, set_current=True)
    return root


@pytest.fixture
def db() -> Iterator[DbEngine]:
    engine = make_engine("sqlite://")
    target_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db: DbEngine) -> Callable[[], Session]:
    """The unit conftest's `decide` writes here, and the app reads here."""
    return make_session_factory(db)


@pytest.fixture
def scorer(model_dir: Path) -> PropensityScorer:
    """The unit conftest's `decide` scores with the small real model."""
    return PropensityScorer(model_dir)


@pytest.fixture
def engine(db: DbEngine, model_dir: Path, scorer: PropensityScorer) -> Engine:
    settings = replace(Settings.from_env({}), model_dir=model_dir, redis_url=None)
    return bootstrap(settings, db=db, scorer=scorer, policy=PolicyConfig(mode="greedy"))


@pytest.fixture
def marketer(engine: Engine) -> str:
    with unit_of_work(engine.sessions) as session:
        return create_key(session, engine.settings.secret_key, "marketer", None)


@pytest.fixture
def client(engine: Engine) -> FlaskClient:
    return create_app(engine=engine).test_client()
