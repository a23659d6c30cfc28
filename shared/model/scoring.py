"""The ONNX scorer: P(redeem) for a batch of candidate offers, with hot reload of new model versions.

Model directory layout (written by `tenin model train`):
    <dir>/CURRENT               the version string in use
    <dir>/<version>/card.json   model card: kind, feature_names, metrics, files
    <dir>/<version>/model.onnx  (kind "propensity"), or treated.onnx + control.onnx (kind "uplift")
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from shared.model.features import FEATURE_NAMES, N_FEATURES

log = logging.getLogger(__name__)

_FILES = {"propensity": ("model",), "uplift": ("treated", "control")}


class ModelLoadError(RuntimeError):
    """The model directory, its CURRENT pointer, card or ONNX file is missing or unusable."""


class InvalidFeatures(ValueError):
    """A feature matrix has the wrong shape or holds NaN/inf; the caller falls back to no coupon."""


def session_options() -> ort.SessionOptions:
    """One thread per session: the engine scales by processes, and threads only add latency here."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


@dataclass(frozen=True)
class _Net:
    session: ort.InferenceSession
    input_name: str
    output_name: str

    def run(self, matrix: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: matrix})[0]
        # Classifiers give (n, 2) probabilities; the positive class is column 1.
        return out[:, 1] if out.ndim == 2 and out.shape[1] == 2 else out.reshape(-1)


@dataclass(frozen=True)
class LoadedModel:
    """One model version, ready to score; replaced as a whole on reload."""

    version: str
    card: dict[str, Any]
    nets: dict[str, _Net]


def read_current(model_dir: Path | str) -> str:
    """The version named in <dir>/CURRENT."""
    path = Path(model_dir) / "CURRENT"
    try:
        version = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ModelLoadError(f"no model: {path} does not exist (run `tenin model train`)") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not version or "/" in version or version.startswith("."):
        raise ModelLoadError(f"{path} does not name a model version: {version!r}")
    return version


def read_card(model_dir: Path | str, version: str) -> dict[str, Any]:
    """The model card of one version."""
    card_path = Path(model_dir) / version / "card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"model {version}: card {card_path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model {version}: card {card_path} is unreadable: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelLoadError(f"model {version}: card {card_path} is not a JSON object")
    return card


def load_version(
    model_dir: Path | str, version: str, expected_kind: str | None = None
) -> LoadedModel:
    """Load and check one version; any problem becomes a ModelLoadError saying what and where."""
    vdir = Path(model_dir) / version
    card = read_card(model_dir, version)
    kind = card.get("kind", "propensity")
    if kind not in _FILES or (expected_kind and kind != expected_kind):
        raise ModelLoadError(
            f"model {version}: kind {kind!r}, expected {expected_kind or list(_FILES)}"
        )
    if tuple(card.get("feature_names", ())) != FEATURE_NAMES:
        raise ModelLoadError(
            f"model {version} was trained on features {card.get('feature_names')} but this build "
            f"computes {list(FEATURE_NAMES)}; retrain it"
        )
    nets = {role: _load_net(vdir / f"{role}.onnx", version) for role in _FILES[kind]}
    return LoadedModel(version=version, card=card, nets=nets)


def _load_net(path: Path, version: str) -> _Net:
    if not path.is_file():
        raise ModelLoadError(f"model {version}: {path} is missing")
    try:
        session = ort.InferenceSession(
            str(path), session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own types for a corrupt file
        raise ModelLoadError(
            f"model {version}: {path} is not a loadable ONNX model: {exc}"
        ) from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if (
        len(inputs) != 1
        or inputs[0].shape[-1] not in (N_FEATURES, None, "N")
        or inputs[0].type != "tensor(float)"
    ):
        raise ModelLoadError(
            f"model {version}: {path} wants {inputs[0].shape} {inputs[0].type}, "
            f"not [N, {N_FEATURES}] float32"
        )
    names = [o.name for o in outputs]
    net = _Net(session, inputs[0].name, "probabilities" if "probabilities" in names else names[-1])
    try:  # a smoke test now beats a failure on the first customer
        probe = net.run(np.zeros((2, N_FEATURES), dtype=np.float32))
    except Exception as exc:
        raise ModelLoadError(f"model {version}: {path} fails on a test row: {exc}") from exc
    if probe.shape != (2,) or not np.isfinite(probe).all():
        raise ModelLoadError(
            f"model {version}: {path} returns {probe.shape}, not one score per row"
        )
    return net


def validate_matrix(matrix: Any) -> np.ndarray:
    """The matrix as contiguous float32 (n, N_FEATURES); InvalidFeatures if it is not a usable one."""
    if not isinstance(matrix, np.ndarray):
        raise InvalidFeatures(f"features must be a numpy array, got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES or matrix.shape[0] == 0:
        raise InvalidFeatures(f"features have shape {matrix.shape}, expected (n>=1, {N_FEATURES})")
    if matrix.dtype != np.float32 or not matrix.flags.c_contiguous:
        try:
            matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidFeatures(f"features are not numeric: {exc}") from exc
    if not np.isfinite(matrix).all():
        bad = [FEATURE_NAMES[j] for j in np.flatnonzero(~np.isfinite(matrix).all(axis=0))]
        raise InvalidFeatures(f"features hold NaN or infinity in {bad}")
    return matrix


class _ReloadingModel:
    """Holds the CURRENT version of a model directory and swaps in a new one when CURRENT changes."""

    kind = "propensity"

    def __init__(
        self,
        model_dir: Path | str,
        reload_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_dir = Path(model_dir)
        self._interval = reload_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        # Start-up: let a missing or corrupt model fail loudly, before any traffic.
        self._model = load_version(self.model_dir, read_current(self.model_dir), self.kind)
        self._next_check = clock() + reload_interval_s

    @property
    def model_version(self) -> str:
        """Version string of the model now scoring (log it with every decision)."""
        return self._model.version

    @property
    def card(self) -> dict[str, Any]:
        """Model card of the version now scoring."""
        return self._model.card

    def maybe_reload(self) -> bool:
        """Every reload_interval_s at most, re-read CURRENT and swap in a new version; True if swapped."""
        now = self._clock()
        if now < self._next_check or not self._lock.acquire(blocking=False):
            return False
        try:
            self._next_check = now + self._interval
            return self._reload()
        finally:
            self._lock.release()

    def _reload(self) -> bool:
        try:
            version = read_current(self.model_dir)
            if version == self._model.version:
                return False
            model = load_version(self.model_dir, version, self.kind)
        except ModelLoadError as exc:
            # A bad new version must not take down a running engine: keep scoring with the old one.
            log.error("model reload failed; keeping %s: %s", self._model.version, exc)
            return False
        old, self._model = self._model.version, model  # one reference swap: readers see old or new
        log.info("model reloaded: %s -> %s", old, model.version)
        return True


class PropensityScorer(_ReloadingModel):
    """P(redeem | customer, context, offer) for every candidate of a request, in one batch."""

    kind = "propensity"

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """P(redeem) per row of a (n, N_FEATURES) matrix; raises InvalidFeatures on bad input."""
        x = validate_matrix(matrix)
        return self._model.nets["model"].run(x).astype(np.float64)


class UpliftScorer(_ReloadingModel):
    """T-learner: expected spend (yen) in the validity window if sent each offer, and if sent nothing."""

    kind = "uplift"

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(spend | treated, spend | control) per row, in yen; raises InvalidFeatures on bad input."""
        x = validate_matrix(matrix)
        model = self._model  # one snapshot, so both halves come from the same version
        return (
            model.nets["treated"].run(x).astype(np.float64),
            model.nets["control"].run(x).astype(np.float64),
        )

    def uplift(self, matrix: np.ndarray) -> np.ndarray:
        """Spend the offer causes per row (treated - control), in yen."""
        treated, control = self.score(matrix)
        return treated - control


def open_scorer(
    model_dir: Path | str, reload_interval_s: float = 5.0
) -> PropensityScorer | UpliftScorer:
    """The scorer matching the card of the CURRENT version (kind propensity or uplift)."""
    card = read_card(model_dir, read_current(model_dir))
    cls = UpliftScorer if card.get("kind") == "uplift" else PropensityScorer
    return cls(model_dir, reload_interval_s)
