"""Scores for labelled intent sets and a rule audit, shared by the unit tests and the bench.

The labelled sets live in tests/data/intents: ``tuning/`` may be read when writing
rules and exemplars, ``frozen/`` only measures (see tests/data/intents/README.md).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import rules
from .text import normalize


def load_set(path: Path) -> list[dict[str, str]]:
    """Rows ({"text", "intent", ...}) of a labelled JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


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


# --- rule audit ----------------------------------------------------------------------
#
# A rule pattern is split into fragments: its top-level alternatives, with plain
# groups of alternatives multiplied out ("^(stop|unsub)[.! ]*$" gives "^stop[.! ]*$"
# and "^unsub[.! ]*$"). Quantified groups and look-arounds stay whole. A fragment that
# matches test sentences but no exemplar, tuning sentence or documented command was
# most likely written from the test set.

_MAX_EXPANSION = 64
_QUANTIFIER = re.compile(r"(?:[?*+]|\{\d*,?\d*\})\??")
_GROUP_OPENER = re.compile(r"\((?:\?(?::|<?[=!]|P<\w+>))?")

# One alternative: a list of literal chunks and groups (opener, alternatives, closer).
_Branch = list["str | _Group"]


@dataclass(frozen=True)
class _Group:
    opener: str
    branches: list[_Branch]
    closer: str  # ")" plus any quantifier


def _parse(pattern: str, i: int = 0) -> tuple[list[_Branch], int]:
    branches: list[_Branch] = [[]]
    chunk = ""
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            chunk += pattern[i : i + 2]
            i += 2
        elif ch == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            j += pattern[j : j + 1] == "]"
            while pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            chunk += pattern[i : j + 1]
            i = j + 1
        elif ch == "(":
            if chunk:
                branches[-1].append(chunk)
                chunk = ""
            opener = _GROUP_OPENER.match(pattern, i)
            assert opener is not None
            inner, i = _parse(pattern, opener.end())
            quantifier = _QUANTIFIER.match(pattern, i + 1)
            end = quantifier.end() if quantifier else i + 1
            branches[-1].append(_Group(opener.group(0), inner, pattern[i:end]))
            i = end
        elif ch == ")":
            break
        elif ch == "|":
            if chunk:
                branches[-1].append(chunk)
                chunk = ""
            branches.append([])
            i += 1
        else:
            chunk += ch
            i += 1
    if chunk:
        branches[-1].append(chunk)
    return branches, i


def _render(branch: _Branch) -> str:
    return "".join(
        item
        if isinstance(item, str)
        else item.opener + "|".join(_render(b) for b in item.branches) + item.closer
        for item in branch
    )


def _expand(branch: _Branch) -> list[str]:
    choices: list[list[str]] = []
    for item in branch:
        if isinstance(item, str):
            choices.append([item])
        elif item.closer != ")" or item.opener not in ("(", "(?:"):
            choices.append([_render([item])])  # quantified group or look-around
        else:
            choices.append([text for b in item.branches for text in _expand(b)])
    if math.prod(len(options) for options in choices) > _MAX_EXPANSION:
        return [_render(branch)]
    return ["".join(parts) for parts in itertools.product(*choices)]


def fragments(pattern: str) -> list[str]:
    """The fragments of one regular expression, each a regular expression itself."""
    branches, _ = _parse(pattern)
    return [text for branch in branches for text in _expand(branch)]


def rule_fragments() -> list[tuple[str, str]]:
    """(pattern name, fragment) for every fragment of every rule pattern."""
    return [
        (name, fragment)
        for name, pattern in rules.PATTERNS.items()
        for fragment in fragments(pattern.pattern)
    ]


@dataclass(frozen=True)
class Unsupported:
    """A rule fragment that matches checked texts and none of the supporting ones."""

    pattern: str
    fragment: str
    matches: tuple[str, ...]


def unsupported_fragments(
    checked: Iterable[str], support: Iterable[str], *, catalog: Iterable[str] = ()
) -> list[Unsupported]:
    """Fragments matching some ``checked`` text but no ``support`` text.

    ``catalog`` texts (the shop's own product wording) also back the product
    category patterns, whose fragments are product names rather than phrasings.
    """
    checked_norm = [(text, normalize(text)) for text in checked]
    support_norm = [normalize(text) for text in support]
    catalog_norm = [normalize(text) for text in catalog]
    found = []
    for name, fragment in rule_fragments():
        regex = re.compile(fragment)
        hits = tuple(text for text, norm in checked_norm if regex.search(norm))
        if not hits:
            continue
        backing = support_norm + catalog_norm if name.startswith("category:") else support_norm
        if not any(regex.search(norm) for norm in backing):
            found.append(Unsupported(name, fragment, hits))
    return found
