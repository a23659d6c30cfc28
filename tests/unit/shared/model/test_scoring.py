"""The ONNX scorer: parity with LightGBM, bad input, bad model files, hot reload."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from services.campaign_engine.modeling.artifacts import set_current_version, to_onnx, write_version
from services.campaign_engine.modeling.dataset import simulated_rows
from services.campaign_engine.modeling.train import TrainParams, fit_lightgbm
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR
from shared.model.features import FEATURE_NAMES, N_FEATURES
from shared.model.scoring import (
    InvalidFeatures,
    ModelLoadError,
    PropensityScorer,
    UpliftScorer,
    open_scorer,
    read_current,
)


@dataclass
class Trained:
    model: lgb.LGBMClassifier
    onnx: bytes


def _card(version: str) -> dict:
    return {"version": version, "kind": "propensity", "feature_names": list(FEATURE_NAMES)}


def _train(seed: int, trees: int = 30) -> Trained:
    rows = simulated_rows(4000, seed)
    model = fit_lightgbm(
        rows.X, rows.y, TrainParams(n_estimators=trees, min_child_samples=20), seed
    )
    return Trained(model, to_onnx(model))


@pytest.fixture(scope="module")
def first() -> Trained:
    return _train(seed=1)


@pytest.fixture(scope="module")
def second() -> Trained:
    return _train(seed=2, trees=10)


@pytest.fixture
def model_dir(tmp_path: Path, first: Trained) -> Path:
    write_version(tmp_path, "v1", {"model.onnx": first.onnx}, _card("v1"), set_current=True)
    return tmp_path


@pytest.fixture(scope="module")
def fresh_rows() -> np.ndarray:
    return simulated_rows(3000, seed=99).X


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_onnx_matches_native_lightgbm_within_1e_5(
    model_dir: Path, first: Trained, fresh_rows: np.ndarray
) -> None:
    scorer = PropensityScorer(model_dir)
    gap = np.max(np.abs(scorer.score(fresh_rows) - first.model.predict_proba(fresh_rows)[:, 1]))
    print(f"max |ONNX - LightGBM| on {len(fresh_rows)} fresh rows: {gap:.2e}")
    assert gap <= 1e-5


def test_batch_scoring_equals_row_by_row(model_dir: Path, fresh_rows: np.ndarray) -> None:
    scorer = PropensityScorer(model_dir)
    batch = scorer.score(fresh_rows[:10])
    single = np.array([scorer.score(fresh_rows[i : i + 1])[0] for i in range(10)])
    np.testing.assert_allclose(batch, single, atol=1e-7)
    assert ((batch > 0) & (batch < 1)).all()


def test_one_thread_per_session(model_dir: Path) -> None:
    opts = PropensityScorer(model_dir)._model.nets["model"].session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1


@pytest.mark.parametrize(
    "bad",
    [
        np.full((3, N_FEATURES), np.nan, dtype=np.float32),
        np.array([[0.0] * (N_FEATURES - 1) + [np.inf]], dtype=np.float32),
        np.zeros((2, N_FEATURES - 1), dtype=np.float32),
        np.zeros(N_FEATURES, dtype=np.float32),
        np.zeros((0, N_FEATURES), dtype=np.float32),
        [[0.0] * N_FEATURES],
        np.array([["a"] * N_FEATURES]),
    ],
    ids=["nan", "inf", "too-few-columns", "1-d", "no-rows", "list", "strings"],
)
def test_bad_feature_matrices_raise_invalid_features(model_dir: Path, bad: object) -> None:
    with pytest.raises(InvalidFeatures):
        PropensityScorer(model_dir).score(bad)  # type: ignore[arg-type]


def test_float64_input_is_accepted(model_dir: Path, fresh_rows: np.ndarray) -> None:
    scorer = PropensityScorer(model_dir)
    np.testing.assert_allclose(
        scorer.score(fresh_rows[:5].astype(np.float64)), scorer.score(fresh_rows[:5])
    )


def test_missing_directory_or_current_is_a_clear_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="CURRENT"):
        PropensityScorer(tmp_path / "nowhere")
    (tmp_path / "CURRENT").write_text("v9\n")
    with pytest.raises(ModelLoadError, match="v9"):
        PropensityScorer(tmp_path)
    (tmp_path / "CURRENT").write_text("\n")
    with pytest.raises(ModelLoadError, match="does not name"):
        PropensityScorer(tmp_path)


def test_corrupt_or_missing_files_are_clear_start_up_errors(model_dir: Path) -> None:
    onnx_path, card_path = model_dir / "v1" / "model.onnx", model_dir / "v1" / "card.json"
    good_onnx, good_card = onnx_path.read_bytes(), card_path.read_text()

    onnx_path.write_bytes(b"\x08\x07garbage, not protobuf" * 10)
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        PropensityScorer(model_dir)
    onnx_path.unlink()
    with pytest.raises(ModelLoadError, match="model.onnx is missing"):
        PropensityScorer(model_dir)
    onnx_path.write_bytes(good_onnx)

    card_path.write_text("{ not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        PropensityScorer(model_dir)
    card = json.loads(good_card)
    card["feature_names"] = card["feature_names"][:-1]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="retrain"):
        PropensityScorer(model_dir)
    card_path.write_text(good_card)
    assert PropensityScorer(model_dir).model_version == "v1"


def test_hot_reload_swaps_in_a_new_version_without_restart(
    model_dir: Path, second: Trained, fresh_rows: np.ndarray
) -> None:
    clock = Clock()
    scorer = PropensityScorer(model_dir, reload_interval_s=5.0, clock=clock)
    before = scorer.score(fresh_rows[:20])
    write_version(model_dir, "v2", {"model.onnx": second.onnx}, _card("v2"), set_current=True)

    assert scorer.maybe_reload() is False  # checked at most every 5 s
    assert scorer.model_version == "v1"
    clock.now += 5.0
    assert scorer.maybe_reload() is True
    assert scorer.model_version == "v2" and scorer.card["version"] == "v2"
    after = scorer.score(fresh_rows[:20])
    np.testing.assert_allclose(after, second.model.predict_proba(fresh_rows[:20])[:, 1], atol=1e-5)
    assert not np.allclose(before, after)
    clock.now += 5.0
    assert scorer.maybe_reload() is False  # nothing new


def test_a_broken_new_version_keeps_the_old_model_scoring(
    model_dir: Path, fresh_rows: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    scorer = PropensityScorer(model_dir, reload_interval_s=1.0, clock=clock)
    (model_dir / "v3").mkdir()
    (model_dir / "v3" / "card.json").write_text(json.dumps(_card("v3")))
    (model_dir / "v3" / "model.onnx").write_bytes(b"truncated")
    set_current_version(model_dir, "v3")
    clock.now += 1.0
    with caplog.at_level(logging.ERROR):
        assert scorer.maybe_reload() is False
    assert scorer.model_version == "v1"
    assert "keeping v1" in caplog.text and "v3" in caplog.text
    assert scorer.score(fresh_rows[:3]).shape == (3,)


def test_the_shipped_models_load() -> None:
    scorer = PropensityScorer(DEFAULT_MODEL_DIR)
    assert scorer.model_version == read_current(DEFAULT_MODEL_DIR)
    assert scorer.card["max_parity_gap"] <= 1e-5
    assert (DEFAULT_MODEL_DIR / scorer.model_version / "model.onnx").stat().st_size < 600_000
    assert isinstance(open_scorer(DEFAULT_MODEL_DIR), PropensityScorer)
    uplift = open_scorer(DEFAULT_UPLIFT_DIR)
    assert isinstance(uplift, UpliftScorer)
    treated, control = uplift.score(np.zeros((4, N_FEATURES), dtype=np.float32))
    assert treated.shape == control.shape == (4,)
    with pytest.raises(ModelLoadError, match="kind"):
        UpliftScorer(DEFAULT_MODEL_DIR)


def test_partially_written_versions_are_invisible(tmp_path: Path, first: Trained) -> None:
    """write_version builds the directory aside and renames it, then flips CURRENT."""
    write_version(tmp_path, "v1", {"model.onnx": first.onnx}, _card("v1"), set_current=False)
    assert not (tmp_path / "CURRENT").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    set_current_version(tmp_path, "v1")
    assert read_current(tmp_path) == "v1"
    shutil.rmtree(tmp_path / "v1")
    with pytest.raises(ModelLoadError):
        PropensityScorer(tmp_path)
