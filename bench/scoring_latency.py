"""Scoring latency per request (10 candidate offers): onnxruntime against native LightGBM, same run.

Both score the very same trees: a LightGBM model with the shipped model's settings (200 trees,
15 leaves) is fitted on simulated rows, exported with the shipped exporter, and each request's
10-row float32 matrix is scored one request at a time. "native" is LGBMClassifier.predict_proba
(what serving code would call); Booster.predict (the bare C API) is shown too. The shipped model
is timed through PropensityScorer.score (with its shape/NaN checks) for reference.

    .venv/bin/python bench/scoring_latency.py
    .venv/bin/python bench/scoring_latency.py --requests 2000 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.campaign_engine.modeling.artifacts import to_onnx  # noqa: E402
from services.campaign_engine.modeling.dataset import SimWorld, simulated_rows  # noqa: E402
from services.campaign_engine.modeling.train import TrainParams, fit_lightgbm  # noqa: E402
from shared.config import DEFAULT_MODEL_DIR  # noqa: E402
from shared.model.features import feature_matrix  # noqa: E402
from shared.model.scoring import PropensityScorer, session_options  # noqa: E402


def latencies(
    fn: Callable[[np.ndarray], object], requests: list[np.ndarray], rounds: int
) -> np.ndarray:
    """Microseconds per call, every request scored `rounds` times (after a warm-up pass)."""
    for x in requests[:200]:
        fn(x)
    out = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for x in requests:
            t0 = clock()
            fn(x)
            out.append(clock() - t0)
    return np.array(out) / 1000.0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--train-rows", type=int, default=60_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import onnxruntime as ort

    print(f"fitting the native model on {args.train_rows:,} simulated rows ...", flush=True)
    rows = simulated_rows(args.train_rows, seed=3)
    model = fit_lightgbm(rows.X, rows.y, TrainParams(), seed=3)
    session = ort.InferenceSession(
        to_onnx(model), session_options(), providers=["CPUExecutionProvider"]
    )
    booster = model.booster_
    shipped = PropensityScorer(DEFAULT_MODEL_DIR)

    world = SimWorld.create(2000, seed=5)
    k = args.candidates
    requests = [
        feature_matrix(r.features, r.context, r.offers)
        for r in world.requests(args.requests, 5, (k, k))
    ]
    # Same trees, same rows: the two must agree before their speed means anything.
    probe = np.concatenate(requests[:100])
    gap = float(
        np.max(
            np.abs(
                np.asarray(session.run(["probabilities"], {"input": probe})[0])[:, 1]
                - np.asarray(model.predict_proba(probe))[:, 1]
            )
        )
    )

    runs = {
        "onnxruntime": lambda x: session.run(["probabilities"], {"input": x}),
        "lightgbm predict_proba": lambda x: model.predict_proba(x),
        "lightgbm Booster.predict": lambda x: booster.predict(x),
        "shipped PropensityScorer.score": shipped.score,
    }
    print(
        f"{len(requests)} requests x {k} candidates x {args.rounds} rounds, one request per call, "
        f"1 thread (pid {os.getpid()}); ONNX/native max gap {gap:.1e}"
    )
    results = {}
    for name, fn in runs.items():
        us = latencies(fn, requests, args.rounds)
        results[name] = {
            "p50_us": float(np.percentile(us, 50)),
            "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()),
        }
        print(
            f"  {name:32s} p50 {results[name]['p50_us']:8.1f} us   p99 {results[name]['p99_us']:8.1f} us"
        )
    onnx = results["onnxruntime"]
    for native in ("lightgbm predict_proba", "lightgbm Booster.predict"):
        print(
            f"  onnxruntime vs {native}: {results[native]['p50_us'] / onnx['p50_us']:.1f}x faster at p50, "
            f"{results[native]['p99_us'] / onnx['p99_us']:.1f}x at p99"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"candidates": k, "parity_gap": gap, **results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
