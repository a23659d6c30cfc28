"""Tree contributions read from the ONNX artifact: the trees reproduce the served model, and the
contributions are exact interventional Shapley values."""

from __future__ import annotations

from itertools import combinations
from math import factorial
from pathlib import Path

import numpy as np

from services.campaign_engine.insights.trees import contributions, read_leaves
from services.campaign_engine.modeling import artifacts
from services.campaign_engine.modeling.artifacts import onnx_predict
from services.campaign_engine.modeling.train import TrainParams, fit_lightgbm
from shared.config import DEFAULT_MODEL_DIR
from shared.model.features import N_FEATURES
from shared.model.scoring import read_card, read_current
from tests.unit.campaign_engine.insights.conftest import synthetic_rows


def _onnx(model_dir: Path) -> Path:
    version = read_current(model_dir)
    return model_dir / version / read_card(model_dir, version)["files"]["model"]


def test_the_parsed_trees_give_what_onnxruntime_serves(model_dir: Path) -> None:
    for path in (_onnx(model_dir), _onnx(DEFAULT_MODEL_DIR)):
        leaves = read_leaves(path, N_FEATURES)
        x, _ = synthetic_rows(300, seed=11)
        served = onnx_predict(path.read_bytes(), x)
        assert np.max(np.abs(leaves.output(x) - served)) < 1e-5


def test_contributions_add_up_to_the_margin_gap(model_dir: Path) -> None:
    leaves = read_leaves(_onnx(model_dir), N_FEATURES)
    x, _ = synthetic_rows(65, seed=5)
    phi = contributions(leaves, x[0], x[1:])
    gap = leaves.margin(x[:1])[0] - leaves.margin(x[1:]).mean()
    assert abs(phi.sum() - gap) < 1e-9
    assert abs(gap) > 0.01  # a gap worth explaining, so the check above means something


def test_contributions_are_the_exact_shapley_values(tmp_path: Path) -> None:
    """Brute force over every subset of the features a few small trees use."""
    rng = np.random.default_rng(9)
    x = rng.uniform(0.0, 1.0, size=(3000, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 3] * x[:, 5] + 0.5 * x[:, 8] + rng.normal(0, 0.1, 3000)) > 1.0
    params = TrainParams(n_estimators=4, num_leaves=6, max_depth=3, min_child_samples=20)
    model = fit_lightgbm(x, y.astype(int), params, seed=2)
    path = tmp_path / "small.onnx"
    path.write_bytes(artifacts.to_onnx(model))
    leaves = read_leaves(path, N_FEATURES)
    used = sorted(
        set(np.flatnonzero(np.isfinite(leaves.lo).any(axis=0)))
        | set(np.flatnonzero(np.isfinite(leaves.hi).any(axis=0)))
    )
    row, refs = x[0].astype(np.float64), x[1:4].astype(np.float64)
    row[used] = refs[:, used].mean(axis=0) + 0.3  # differ from every reference on each feature

    def value(subset: tuple[int, ...]) -> float:
        hybrid = refs.copy()
        hybrid[:, list(subset)] = row[list(subset)]
        return float(leaves.margin(hybrid).mean())

    m = len(used)
    assert m >= 3  # interactions between features, so the weights are really exercised
    expected = np.zeros(N_FEATURES)
    for i in used:
        others = [j for j in used if j != i]
        for size in range(m):
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            for subset in combinations(others, size):
                expected[i] += weight * (value((*subset, i)) - value(subset))
    assert np.allclose(contributions(leaves, row, refs), expected, atol=1e-9)
    assert np.abs(expected).max() > 1e-3
