"""Tree contributions read from the ONNX artifact the engine serves (no second model file).

The exported LightGBM model is an ONNX TreeEnsemble. Each leaf is reached when every feature
on its path lies in one interval (lo, hi]; summed leaf values give the model's margin (the
log-odds for a classifier, yen for a regressor). Contributions are interventional SHAP
values against a set of reference rows: for a leaf whose path some features satisfy only with
the explained row's values (set A) and others only with the reference's (set B), the game
"reach this leaf" has the closed-form Shapley values (|A|-1)!|B|!/(|A|+|B|)! for A's members
and -|A|!(|B|-1)!/(|A|+|B|)! for B's. Summed over leaves and averaged over references, the
contributions add up exactly to margin(x) - mean(margin(reference)).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from pathlib import Path

import numpy as np
import onnx

_ENSEMBLES = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")


class UnsupportedModel(ValueError):
    """The ONNX file holds no tree ensemble this module can read."""


@dataclass(frozen=True)
class TreeLeaves:
    """Every leaf of every tree: its value and the interval (lo, hi] each feature must lie in."""

    values: np.ndarray  # (L,) leaf value on the margin scale
    lo: np.ndarray  # (L, F) exclusive lower bounds (-inf when the path has none)
    hi: np.ndarray  # (L, F) inclusive upper bounds (+inf when the path has none)
    base: float  # added to the sum of leaf values
    logistic: bool  # whether the served output is sigmoid(margin)

    def margin(self, rows: np.ndarray) -> np.ndarray:
        """The model's margin for each row (n, F)."""
        x = np.asarray(rows, dtype=np.float64)[:, None, :]
        inside = ((self.lo < x) & (x <= self.hi)).all(axis=-1)
        return self.base + inside.astype(np.float64) @ self.values

    def output(self, rows: np.ndarray) -> np.ndarray:
        """What the served model returns: a probability (classifier) or the margin (regressor)."""
        m = self.margin(rows)
        return 1.0 / (1.0 + np.exp(-m)) if self.logistic else m


def read_leaves(path: Path | str, n_features: int) -> TreeLeaves:
    """The leaves of the single tree ensemble in an ONNX file."""
    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type in _ENSEMBLES]
    if len(nodes) != 1:
        raise UnsupportedModel(f"{path}: expected one tree ensemble, found {len(nodes)}")
    node = nodes[0]
    a = {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}
    classifier = node.op_type == "TreeEnsembleClassifier"
    prefix = "class" if classifier else "target"
    weights: dict[tuple[int, int], float] = {}
    for tree, nid, w in zip(
        a[f"{prefix}_treeids"], a[f"{prefix}_nodeids"], a[f"{prefix}_weights"], strict=True
    ):
        weights[(tree, nid)] = weights.get((tree, nid), 0.0) + float(w)
    table = {
        (t, nid): (mode, int(f), float(v), int(yes), int(no))
        for t, nid, mode, f, v, yes, no in zip(
            a["nodes_treeids"],
            a["nodes_nodeids"],
            a["nodes_modes"],
            a["nodes_featureids"],
            a["nodes_values"],
            a["nodes_truenodeids"],
            a["nodes_falsenodeids"],
            strict=True,
        )
    }
    values: list[float] = []
    bounds: list[tuple[np.ndarray, np.ndarray]] = []
    for tree in sorted({t for t, _ in table}):
        _walk(
            table,
            weights,
            tree,
            0,
            np.full(n_features, -np.inf),
            np.full(n_features, np.inf),
            values,
            bounds,
        )
    post = a.get("post_transform", b"NONE")
    base = a.get("base_values") or [0.0]
    return TreeLeaves(
        values=np.array(values),
        lo=np.array([b[0] for b in bounds]),
        hi=np.array([b[1] for b in bounds]),
        base=float(base[-1]),
        logistic=(post.decode() if isinstance(post, bytes) else post) == "LOGISTIC",
    )


def _walk(
    table: dict[tuple[int, int], tuple[bytes, int, float, int, int]],
    weights: dict[tuple[int, int], float],
    tree: int,
    nid: int,
    lo: np.ndarray,
    hi: np.ndarray,
    values: list[float],
    bounds: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    mode, feature, threshold, yes, no = table[(tree, nid)]
    if mode == b"LEAF":
        values.append(weights.get((tree, nid), 0.0))
        bounds.append((lo, hi))
        return
    if mode == b"BRANCH_LEQ":
        cut = threshold
    elif mode == b"BRANCH_LT":  # float32 inputs: x < t is x <= the float32 just below t
        cut = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    else:
        raise UnsupportedModel(f"tree {tree} node {nid}: unsupported split mode {mode!r}")
    yes_hi, no_lo = hi.copy(), lo.copy()
    yes_hi[feature] = min(hi[feature], cut)
    no_lo[feature] = max(lo[feature], cut)
    _walk(table, weights, tree, yes, lo, yes_hi, values, bounds)
    _walk(table, weights, tree, no, no_lo, hi, values, bounds)


def _shapley_weights(n: int) -> tuple[np.ndarray, np.ndarray]:
    """w_in[a, b] = (a-1)! b! / (a+b)!  and  w_out[a, b] = a! (b-1)! / (a+b)!  (0 where undefined)."""
    w_in = np.zeros((n + 1, n + 1))
    w_out = np.zeros((n + 1, n + 1))
    for a in range(n + 1):
        for b in range(n + 1 - a):
            if a:
                w_in[a, b] = factorial(a - 1) * factorial(b) / factorial(a + b)
            if b:
                w_out[a, b] = factorial(a) * factorial(b - 1) / factorial(a + b)
    return w_in, w_out


def contributions(leaves: TreeLeaves, row: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per-feature contributions (margin scale) of `row` against the mean of `references`.

    They sum to margin(row) - mean(margin(references)).
    """
    x = np.asarray(row, dtype=np.float64).reshape(-1)
    refs = np.atleast_2d(np.asarray(references, dtype=np.float64))
    n_features = x.shape[0]
    w_in, w_out = _shapley_weights(n_features)
    x_ok = (leaves.lo < x) & (x <= leaves.hi)  # (L, F)
    total = np.zeros(n_features)
    for ref in refs:  # one reference at a time keeps memory at (L, F)
        r_ok = (leaves.lo < ref) & (ref <= leaves.hi)
        reachable = (x_ok | r_ok).all(axis=1)
        only_x = (x_ok & ~r_ok)[reachable]
        only_r = (r_ok & ~x_ok)[reachable]
        a, b = only_x.sum(axis=1), only_r.sum(axis=1)
        v = leaves.values[reachable]
        total += (v * w_in[a, b]) @ only_x - (v * w_out[a, b]) @ only_r
    return total / len(refs)
