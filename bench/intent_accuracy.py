"""Accuracy, macro-F1, confusions and latency of chat_agent understanding.

Usage: python bench/intent_accuracy.py [--set frozen|tuning | --data DIR] [--exemplars PATH]

Reads a labelled set (one JSONL per language; by default the frozen test set, which no
rule or exemplar is written from: see tests/data/intents/README.md), interprets every
utterance one at a time (as the chat worker does) and prints, per language: accuracy
and macro-F1 of the hybrid (rules, then embeddings), accuracy on the utterances the
rules left to the model, accuracy and macro-F1 of the model alone (rules off), the
most frequent confusions, and median latency of the rule and the embedding path.
Figures on ``--set tuning`` are in-sample for the rules and say little.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.chat_agent.understanding import INTENTS, Interpretation, Understanding  # noqa: E402
from services.chat_agent.understanding.evaluation import (  # noqa: E402
    accuracy,
    load_set,
    macro_f1,
)

INTENT_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "intents"


def timed(understanding: Understanding, text: str) -> tuple[Interpretation, float]:
    """One interpretation and its wall time in milliseconds."""
    start = time.perf_counter()
    result = understanding.understand(text)
    return result, (time.perf_counter() - start) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--set",
        choices=("frozen", "tuning"),
        default="frozen",
        help="labelled set under tests/data/intents (default: frozen)",
    )
    chosen.add_argument("--data", type=Path, help="another folder of <language>.jsonl files")
    parser.add_argument("--exemplars", type=Path, default=None)
    args = parser.parse_args(argv)
    data = args.data or INTENT_DATA / args.set
    print(f"labelled set: {data}")

    start = time.perf_counter()
    understanding = Understanding.load(args.exemplars)
    print(f"load (model + exemplar embeddings + fit): {time.perf_counter() - start:.2f} s")
    understanding.understand("warm-up")

    latency: dict[str, list[float]] = {"rule": [], "embedding": [], "fallback": []}
    all_gold: list[str] = []
    all_predicted: list[str] = []
    for path in sorted(data.glob("*.jsonl")):
        rows = load_set(path)
        results = []
        for row in rows:
            result, ms = timed(understanding, row["text"])
            results.append(result)
            latency[result.via].append(ms)
        gold = [row["intent"] for row in rows]
        predicted = [r.intent for r in results]
        all_gold += gold
        all_predicted += predicted
        on_model = [(g, r.intent) for g, r in zip(gold, results, strict=True) if r.via != "rule"]
        alone = [
            r.intent
            for r in understanding.understand_many([row["text"] for row in rows], use_rules=False)
        ]
        model_accuracy = accuracy([g for g, _ in on_model], [p for _, p in on_model])
        paths = Counter(r.via for r in results)
        print(
            f"\n[{path.stem}] n={len(rows)} via={dict(paths)}\n"
            f"    hybrid:      accuracy={accuracy(gold, predicted):.3f} "
            f"macro-F1={macro_f1(gold, predicted):.3f}\n"
            f"    model alone: accuracy={accuracy(gold, alone):.3f} "
            f"macro-F1={macro_f1(gold, alone):.3f}\n"
            f"    model path:  accuracy={model_accuracy:.3f} (n={len(on_model)}, "
            "what the rules left to the model)"
        )
        confusions = Counter(
            (g, p) for g, p in zip(gold, predicted, strict=True) if g != p
        ).most_common(6)
        for (g, p), count in confusions:
            print(f"    {g:>16} -> {p:<16} x{count}")

    print(
        f"\n[all] accuracy={accuracy(all_gold, all_predicted):.3f} "
        f"macro-F1={macro_f1(all_gold, all_predicted):.3f}"
    )
    print("per-intent recall:")
    for intent in INTENTS:
        pairs = [(g, p) for g, p in zip(all_gold, all_predicted, strict=True) if g == intent]
        if pairs:
            print(f"    {intent:>16} {sum(g == p for g, p in pairs) / len(pairs):.3f}")
    print("median latency of understand() per utterance:")
    for via, values in latency.items():
        if values:
            p95 = sorted(values)[int(0.95 * (len(values) - 1))]
            print(
                f"    {via:>9}: {statistics.median(values):.2f} ms (p95 {p95:.2f} ms, n={len(values)})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
