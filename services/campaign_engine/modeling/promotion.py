"""Promote, refuse and roll back model versions in the registry (docs/learning.md § The promotion gate).

Each operation writes one row of the promotion history (who, when, why, the estimates) in the
caller's transaction, and moves the kind's CURRENT file through registry.set_serving, which is
what running workers hot-reload (shared/model/scoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.gate import Verdict


class PromotionError(ValueError):
    """The operation cannot be done: unknown version, nothing to roll back to, and so on."""


@dataclass(frozen=True)
class Outcome:
    """What happened: promoted, refused or rolled back, from which version to which."""

    action: str  # promote | refuse | rollback
    kind: str
    from_version: str | None
    to_version: str
    reason: str


def promote(
    session: Session,
    model_dir: Path | str,
    kind: str,
    version: str,
    verdict: Verdict,
    *,
    actor: str,
    reason: str = "",
    force: bool = False,
) -> Outcome:
    """Serve `version` if the gate's verdict allows it (or `force`); record the promotion or refusal."""
    if registry.get(session, kind, version) is None:
        raise PromotionError(f"{kind} {version} is not registered (see `tenin model list`)")
    champion = registry.serving(session, kind)
    if champion == version:
        raise PromotionError(f"{kind} {version} already serves")
    why = "; ".join(p for p in (reason.strip(), f"gate: {verdict.reason}") if p)
    if not verdict.promote and not force:
        registry.record_change(
            session, kind, champion, version, "refuse", actor, why, verdict.as_json()
        )
        return Outcome("refuse", kind, champion, version, why)
    if not verdict.promote:
        why = f"forced past the gate; {why}"
    registry.set_serving(session, model_dir, kind, version)
    registry.record_change(
        session, kind, champion, version, "promote", actor, why, verdict.as_json()
    )
    return Outcome("promote", kind, champion, version, why)


def serving_stack(session: Session, kind: str) -> list[str]:
    """The versions that served in turn, oldest first, with rollbacks undone: the last one serves."""
    stack: list[str] = []
    for change in reversed(registry.changes(session, kind)):
        if change.action == "promote":
            stack.append(change.to_version)
        elif change.action == "rollback" and stack:
            stack.pop()
    return stack


def rollback(
    session: Session, model_dir: Path | str, kind: str, *, actor: str, reason: str = ""
) -> Outcome:
    """Serve again the version that served before the current one was promoted; record it."""
    current = registry.serving(session, kind)
    if current is None:
        raise PromotionError(f"no {kind} version serves: nothing to roll back")
    stack = serving_stack(session, kind)
    if len(stack) < 2 or stack[-1] != current:
        raise PromotionError(f"{kind} {current} has no earlier serving version to return to")
    previous = stack[-2]
    registry.set_serving(session, model_dir, kind, previous)
    why = reason.strip() or "rollback"
    registry.record_change(session, kind, current, previous, "rollback", actor, why, None)
    return Outcome("rollback", kind, current, previous, why)
