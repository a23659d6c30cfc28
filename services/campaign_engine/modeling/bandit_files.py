"""Logged-bandit files from elsewhere (`tenin model evaluate --logs FILE`): CSV, or Parquet with pyarrow.

The format (docs/learning.md § Logged-bandit files): one row per candidate action of a decision.

| column | required | meaning |
|---|---|---|
| decision_id | yes | groups the rows of one decision |
| chosen | yes | 1 on the candidate that was sent, 0 otherwise (all 0: no coupon was sent) |
| propensity | yes | logged probability of the action taken, in (0, 1] (same on every row) |
| reward | yes | what the decision earned, in yen (same on every row) |
| FEATURE_NAMES | with --policy | the 19 model features of the candidate, as tenin computes them |
| target_probability | no | the candidate policy's probability of this candidate; no coupon = 1 - sum |
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.campaign_engine.decisions.policy import (
    PolicyConfig,
    action_probabilities,
    values_from_features,
)
from services.campaign_engine.modeling.evaluate import BanditLog, Estimate, Target, off_policy
from shared.model.features import FEATURE_NAMES, N_FEATURES

REQUIRED = ("decision_id", "chosen", "propensity", "reward")
TARGET = "target_probability"


class BanditFileError(ValueError):
    """The file cannot be read as logged-bandit feedback; the message names the line and column."""


@dataclass(frozen=True)
class BanditFile:
    """Decisions read from a file: candidates concatenated and split by offsets, as in BanditLog."""

    offsets: np.ndarray  # (n + 1,)
    chosen: np.ndarray  # (n,) candidate index, -1 for no coupon
    propensity: np.ndarray  # (n,)
    reward: np.ndarray  # (n,)
    X: np.ndarray | None  # (m, N_FEATURES) when the file has every feature column
    target: np.ndarray | None  # (m,) when the file has target_probability

    def __len__(self) -> int:
        return len(self.chosen)

    def target_probabilities(self) -> list[np.ndarray]:
        """Per decision, the file's target probabilities with "no coupon" (1 - their sum) last."""
        if self.target is None:
            raise BanditFileError(f"the file has no {TARGET} column")
        return [
            np.append(t, max(0.0, 1.0 - float(t.sum())))
            for t in np.split(self.target, self.offsets[1:-1])
        ]


def read_rows(path: Path) -> Iterable[Mapping[str, Any]]:
    """The file's rows as mappings: .parquet through pyarrow, anything else as CSV."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BanditFileError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow); CSV works without it"
            ) from None
        return pq.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _number(row: Mapping[str, Any], column: str, line: int) -> float:
    raw = row.get(column)
    try:
        value = float(raw)  # type: ignore[arg-type]  # None and junk both land in the except
    except (TypeError, ValueError):
        raise BanditFileError(f"line {line}, column {column}: not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise BanditFileError(f"line {line}, column {column}: not a finite number: {raw!r}")
    return value


def parse(rows: Iterable[Mapping[str, Any]]) -> BanditFile:
    """Check and gather rows into decisions (lines are counted as in a CSV with its header)."""
    groups: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    columns: set[str] = set()
    for line, row in enumerate(rows, start=2):
        if not columns:
            columns = set(row)
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise BanditFileError(f"missing column(s): {', '.join(missing)}")
        groups.setdefault(str(row["decision_id"]), []).append((line, row))
    if not groups:
        raise BanditFileError("the file holds no decisions")
    has_x, has_target = set(FEATURE_NAMES) <= columns, TARGET in columns
    offsets, chosen, props, rewards, xs, targets = [0], [], [], [], [], []
    for decision, members in groups.items():
        picks = [i for i, (line, row) in enumerate(members) if _flag(row, line)]
        if len(picks) > 1:
            raise BanditFileError(f"decision {decision}: {len(picks)} rows have chosen = 1")
        line, first = members[0]
        p = _number(first, "propensity", line)
        if not 0.0 < p <= 1.0:
            raise BanditFileError(f"line {line}, column propensity: {p} is not within (0, 1]")
        offsets.append(offsets[-1] + len(members))
        chosen.append(picks[0] if picks else -1)
        props.append(p)
        rewards.append(_number(first, "reward", line))
        for line, row in members:
            if has_x:
                xs.append([_number(row, name, line) for name in FEATURE_NAMES])
            if has_target:
                targets.append(_number(row, TARGET, line))
    return BanditFile(
        np.array(offsets),
        np.array(chosen, dtype=np.int64),
        np.array(props),
        np.array(rewards),
        np.asarray(xs, dtype=np.float32).reshape(-1, N_FEATURES) if has_x else None,
        np.array(targets) if has_target else None,
    )


def _flag(row: Mapping[str, Any], line: int) -> bool:
    value = _number(row, "chosen", line)
    if value not in (0.0, 1.0):
        raise BanditFileError(f"line {line}, column chosen: must be 0 or 1, got {row['chosen']!r}")
    return value == 1.0


def read(path: Path | str) -> BanditFile:
    """Read and check a logged-bandit file."""
    return parse(read_rows(Path(path)))


def estimate_file(
    f: BanditFile, p_hat: np.ndarray | None, config: PolicyConfig
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR of the candidate policy on a file's decisions.

    The policy's probabilities come from the file's target_probability column when it has one,
    else from the policy model's scores (p_hat, one per candidate row) through `config`. The DR
    direct model is p_hat x the offer's redemption value; without a policy model it is 0, and DR
    then equals IPS.
    """
    cuts = f.offsets[1:-1]
    if p_hat is not None and f.X is not None:
        q_sent = p_hat * values_from_features(f.X, config.margin_rate)
    else:
        q_sent = np.zeros(int(f.offsets[-1]))
    q_hat = [np.append(q, 0.0) for q in np.split(q_sent, cuts)]
    if f.target is not None:
        probs = f.target_probabilities()
    elif p_hat is not None:
        probs = [action_probabilities(q[:-1], config) for q in q_hat]
    else:
        raise BanditFileError(f"the file has no {TARGET} column: name a --policy model")
    return off_policy(Target(probs, q_hat), f.chosen, f.propensity, f.reward)


def write_csv(path: Path | str, log: BanditLog, target: list[np.ndarray] | None = None) -> None:
    """Write a BanditLog in this format (with the target policy's probabilities, if given)."""
    header = [*REQUIRED, *FEATURE_NAMES, *([TARGET] if target is not None else [])]
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        for i, (a, b) in enumerate(zip(log.offsets[:-1], log.offsets[1:], strict=True)):
            for j in range(b - a):
                extra = [repr(float(target[i][j]))] if target is not None else []
                w.writerow(
                    [
                        f"d{i}",
                        int(log.chosen[i] == j),
                        repr(float(log.propensity[i])),
                        repr(float(log.reward[i])),
                        *(repr(float(v)) for v in log.X[a + j]),
                        *extra,
                    ]
                )
