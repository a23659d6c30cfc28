"""What a model card says beyond the fit itself: metrics with intervals, provenance.

Used by modeling/from_logs.py (docs/architecture.md § Measurement, "Decision log"); the card is card.json
in the version's directory and the registry's copy (modeling/registry.py).
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

Z95 = 1.959964
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_MAX_ROWS = 50_000  # resample at most this many held-out rows: the CI, not the fit


def bootstrap_auc(
    y: np.ndarray, p: np.ndarray, seed: int, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, Any]:
    """Held-out ROC AUC with a 95% percentile-bootstrap interval; None values with one class."""
    y, p = np.asarray(y), np.asarray(p)
    if len(np.unique(y)) < 2:
        return {"value": None, "low": None, "high": None, "rounds": 0}
    rng = np.random.default_rng([seed, 51])
    if len(y) > BOOTSTRAP_MAX_ROWS:
        keep = rng.choice(len(y), BOOTSTRAP_MAX_ROWS, replace=False)
        y_b, p_b = y[keep], p[keep]
    else:
        y_b, p_b = y, p
    draws = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y_b), len(y_b))
        if 0 < y_b[idx].sum() < len(idx):
            draws.append(roc_auc_score(y_b[idx], p_b[idx]))
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return {
        "value": round(float(roc_auc_score(y, p)), 4),
        "low": round(float(low), 4),
        "high": round(float(high), 4),
        "rounds": len(draws),
    }


def mean_difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """mean(a) - mean(b) with a normal 95% interval (Welch standard error)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return {"value": None, "low": None, "high": None}
    diff = float(a.mean() - b.mean())
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return {
        "value": round(diff, 2),
        "low": round(diff - Z95 * se, 2),
        "high": round(diff + Z95 * se, 2),
    }


def r_squared(y: np.ndarray, pred: np.ndarray) -> float | None:
    """1 - residual variance / variance (None for a constant outcome)."""
    var = float(np.var(y))
    return round(1.0 - float(np.var(y - pred)) / var, 4) if var > 0 else None


def git_sha() -> str | None:
    """The commit the training code came from, when it runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def data_window(since: datetime, until: datetime, spend_window_days: float) -> dict[str, Any]:
    """Which decisions the model saw: decided in [since, until), outcomes over N days."""
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "spend_window_days": spend_window_days,
    }
