"""Model artifacts: ONNX export with a parity check, and versioned directories with an atomic CURRENT."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

from shared.model.features import N_FEATURES
from shared.model.scoring import session_options

PARITY_TOLERANCE = 1e-5


class ParityError(RuntimeError):
    """ONNX and native probabilities differ by more than PARITY_TOLERANCE: the export is not shipped."""


def native_predict(model: lgb.LGBMModel, X: np.ndarray) -> np.ndarray:
    """What the native model serves: P(y=1) for a classifier, E[y] for a regressor."""
    if isinstance(model, lgb.LGBMClassifier):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X))


def to_onnx(model: lgb.LGBMModel) -> bytes:
    """Serialized ONNX with float32 input [N, N_FEATURES]; classifiers give a plain probabilities tensor (no ZipMap)."""
    onx = convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        zipmap=False,
        target_opset=15,
    )
    _round_thresholds_down(onx, model.booster_.dump_model())
    # The converter declares the label output as shape [1]; onnxruntime then warns on every batch.
    for out in onx.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"
    return onx.SerializeToString()


def _round_thresholds_down(onx: Any, dump: dict[str, Any]) -> None:
    """Store each split threshold t as the largest float32 <= t, not the nearest one.

    LightGBM compares the (float32) input with a double threshold; ONNX with a float32 one.
    Rounded to nearest, t can round up onto a value the data actually holds, and that row then
    takes the other branch. For a float32 x, x <= t exactly when x <= (largest float32 <= t).
    """
    exact: dict[tuple[int, int, float], float] = {}

    def walk(tree: int, node: dict[str, Any]) -> None:
        if "split_feature" in node:
            t = float(node["threshold"])
            exact[(tree, int(node["split_feature"]), float(np.float32(t)))] = t
            walk(tree, node["left_child"])
            walk(tree, node["right_child"])

    for i, info in enumerate(dump["tree_info"]):
        walk(i, info["tree_structure"])
    for node in onx.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        values = attrs["nodes_values"].floats
        for j, mode in enumerate(attrs["nodes_modes"].strings):
            if mode != b"BRANCH_LEQ":
                continue
            v = np.float32(values[j])
            key = (attrs["nodes_treeids"].ints[j], attrs["nodes_featureids"].ints[j], float(v))
            t = exact.get(key)
            if t is not None and float(v) > t:
                values[j] = float(np.nextafter(v, np.float32(-np.inf)))


def onnx_predict(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """One score per row from an exported model, as the scorer computes it."""
    session = ort.InferenceSession(
        onnx_bytes, session_options(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    out = session.run(
        ["probabilities" if "probabilities" in names else names[-1]],
        {"input": np.ascontiguousarray(X, dtype=np.float32)},
    )[0]
    return out[:, 1] if out.ndim == 2 and out.shape[1] == 2 else out.reshape(-1)


def parity_gap(model: lgb.LGBMModel, onnx_bytes: bytes, X: np.ndarray) -> float:
    """Largest |native - ONNX| over the rows; for a regressor, as a share of its mean |output|.

    Probabilities are compared as they are. A regressor's outputs are yen, and float32 sums of
    ~1,000-yen scores carry ~1e-3 yen of rounding, so its gap is scaled to the typical output.
    """
    native = native_predict(model, X)
    gap = float(np.max(np.abs(native - onnx_predict(onnx_bytes, X))))
    if isinstance(model, lgb.LGBMClassifier):
        return gap
    return gap / max(1.0, float(np.mean(np.abs(native))))


@dataclass(frozen=True)
class Export:
    """A model exported to ONNX and checked against the native one on held-out rows."""

    onnx: bytes
    gap: float  # parity_gap on the held-out rows
    predictions: np.ndarray  # the ONNX model's outputs on those rows


def checked_export(model: lgb.LGBMModel, X_heldout: np.ndarray, what: str = "") -> Export:
    """Export to ONNX and check parity; ParityError (naming `what`) when the two differ."""
    onnx_bytes = to_onnx(model)
    gap = parity_gap(model, onnx_bytes, X_heldout)
    if gap > PARITY_TOLERANCE:
        raise ParityError(
            f"{what}ONNX differs from LightGBM by {gap:.3g} > {PARITY_TOLERANCE} on held-out rows"
        )
    return Export(onnx_bytes, gap, onnx_predict(onnx_bytes, X_heldout))


def new_version(kind: str, payload: bytes, now: datetime | None = None) -> str:
    """Sortable, unique version string: kind, UTC time, content hash."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{stamp}-{hashlib.sha256(payload).hexdigest()[:8]}"


def write_version(
    model_dir: Path | str,
    version: str,
    files: dict[str, bytes],
    card: dict[str, Any],
    set_current: bool,
) -> Path:
    """Write <dir>/<version>/ whole (via a temp dir and rename), then point CURRENT at it atomically."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    tmp = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    (tmp / "card.json").write_text(
        json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if set_current:
        set_current_version(root, version)
    return final


def set_current_version(model_dir: Path | str, version: str) -> None:
    """Point CURRENT at a version; running engines pick it up on their next reload check."""
    root = Path(model_dir)
    tmp = root / f".CURRENT.{os.getpid()}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, root / "CURRENT")
