"""Scores for labelled intent sets, shared by the unit tests and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of predictions equal to the gold label."""
    pairs = list(zip(gold, predicted, strict=True))
    return sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of per-intent F1 over the intents present in ``gold``."""
    pairs = list(zip(gold, predicted, strict=True))
    scores = []
    for intent in sorted(set(gold)):
        tp = sum(g == p == intent for g, p in pairs)
        fp = sum(p == intent != g for g, p in pairs)
        fn = sum(g == intent != p for g, p in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0
