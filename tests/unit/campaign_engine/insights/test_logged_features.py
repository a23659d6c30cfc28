"""Reading the decision log's feature column, in each format it has been written in."""

from __future__ import annotations

import json

import numpy as np

from services.campaign_engine.insights.explain import logged_row, parse_features
from shared.model.features import N_FEATURES

MATRIX = np.round(np.random.default_rng(1).uniform(0, 100, (3, N_FEATURES)), 6)


def _compact(chosen: int | None) -> str:
    return json.dumps({"candidates": MATRIX.tolist(), "chosen": chosen}, separators=(",", ":"))


def test_the_compact_format_and_any_other_json_read_the_same() -> None:
    for chosen in (None, 0, 2):
        fast = parse_features(_compact(chosen))
        slow = parse_features(json.dumps({"candidates": MATRIX.tolist(), "chosen": chosen}))
        assert np.array_equal(fast[0], MATRIX) and np.array_equal(slow[0], MATRIX)  # type: ignore[arg-type]
        assert fast[1] == slow[1] == chosen
        assert np.array_equal(logged_row(_compact(chosen)), MATRIX[chosen or 0])  # type: ignore[arg-type]


def test_the_first_format_was_the_chosen_vector_alone() -> None:
    matrix, chosen = parse_features(json.dumps(MATRIX[1].tolist()))
    assert matrix is not None and np.array_equal(matrix[0], MATRIX[1]) and chosen == 0
    assert np.array_equal(logged_row(json.dumps(MATRIX[1].tolist())), MATRIX[1])  # type: ignore[arg-type]


def test_nothing_usable_reads_as_nothing() -> None:
    for text in (None, "", "not json", "[1, 2]", '{"candidates":[[1,2]],"chosen":0}', "{}"):
        assert parse_features(text) == (None, None)
        assert logged_row(text) is None
    out_of_range = _compact(7)
    assert parse_features(out_of_range)[1] is None
    assert np.array_equal(logged_row(out_of_range), MATRIX[0])  # type: ignore[arg-type]
