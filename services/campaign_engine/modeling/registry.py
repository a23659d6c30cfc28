"""The model registry (docs/architecture.md § Measurement, "Model registry"): every trained version, which one
serves, and every promotion, rollback and refusal with who, when and why.

Two places hold "which version serves": the database (the history, for people and the gate)
and the CURRENT file in the kind's model directory (what running workers watch and hot-reload,
shared/model/scoring.py). `set_serving` changes the rows, flushes them (so a constraint or
connection problem stops it before anything is visible), then moves CURRENT atomically; the
caller commits. Should that commit fail, `set_serving` the previous version again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.campaign_engine.modeling.artifacts import set_current_version
from services.campaign_engine.models import ModelPromotion, ModelVersion
from shared.db import utcnow

Kind = Literal["propensity", "uplift"]
Status = Literal["candidate", "serving", "retired"]
Action = Literal["promote", "rollback", "refuse"]
KINDS: tuple[Kind, ...] = ("propensity", "uplift")
ACTIONS: tuple[Action, ...] = ("promote", "rollback", "refuse")


class RegistryError(ValueError):
    """An unknown kind or version, or a version registered twice with a different card."""


@dataclass(frozen=True)
class RegisteredVersion:
    """One row of the registry."""

    kind: str
    version: str
    status: str
    card: dict[str, Any]
    metrics: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class Change:
    """One recorded promotion, rollback or refusal."""

    kind: str
    from_version: str | None
    to_version: str
    action: str
    actor: str
    reason: str
    at: datetime
    estimates: dict[str, Any] | None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r} (one of {', '.join(KINDS)})")


def _as_registered(row: ModelVersion) -> RegisteredVersion:
    return RegisteredVersion(
        row.kind, row.version, row.status, row.card, row.metrics, row.created_at
    )


def register(session: Session, kind: str, version: str, card: dict[str, Any]) -> RegisteredVersion:
    """Add a trained version as a candidate (never serving); registering it again is a no-op.

    The card's "metrics" member is copied into its own column for listing.
    """
    _check_kind(kind)
    row = session.get(ModelVersion, (kind, version))
    if row is not None:
        if row.card != card:
            raise RegistryError(f"{kind} {version} is already registered with another card")
        return _as_registered(row)
    row = ModelVersion(
        kind=kind,
        version=version,
        status="candidate",
        card=card,
        metrics=card.get("metrics"),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _as_registered(row)


def versions(session: Session, kind: str) -> list[RegisteredVersion]:
    """Every registered version of a kind, newest first."""
    _check_kind(kind)
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.kind == kind)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
    )
    return [_as_registered(r) for r in rows]


def get(session: Session, kind: str, version: str) -> RegisteredVersion | None:
    """One version, or None when it was never registered."""
    _check_kind(kind)
    row = session.get(ModelVersion, (kind, version))
    return _as_registered(row) if row is not None else None


def serving(session: Session, kind: str) -> str | None:
    """The version of a kind the registry says serves, or None before any promotion."""
    _check_kind(kind)
    return session.scalar(
        select(ModelVersion.version).where(
            ModelVersion.kind == kind, ModelVersion.status == "serving"
        )
    )


def record_change(
    session: Session,
    kind: str,
    from_version: str | None,
    to_version: str,
    action: str,
    actor: str,
    reason: str,
    estimates: dict[str, Any] | None,
) -> Change:
    """Write one promotion, rollback or refusal to the history (in the caller's transaction)."""
    _check_kind(kind)
    if action not in ACTIONS:
        raise RegistryError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    row = ModelPromotion(
        kind=kind,
        from_version=from_version,
        to_version=to_version,
        action=action,
        actor=actor,
        reason=reason,
        at=utcnow(),
        estimates=estimates,
    )
    session.add(row)
    session.flush()
    return Change(kind, from_version, to_version, action, actor, reason, row.at, estimates)


def changes(session: Session, kind: str) -> list[Change]:
    """The promotion history of a kind, newest first."""
    _check_kind(kind)
    rows = session.scalars(
        select(ModelPromotion)
        .where(ModelPromotion.kind == kind)
        .order_by(ModelPromotion.at.desc(), ModelPromotion.id.desc())
    )
    return [
        Change(r.kind, r.from_version, r.to_version, r.action, r.actor, r.reason, r.at, r.estimates)
        for r in rows
    ]


def set_serving(session: Session, model_dir: Path | str, kind: str, version: str) -> str | None:
    """Make `version` the one that serves; returns the version it replaces (now retired).

    The version must be registered and its directory must exist under model_dir (the kind's
    own directory: TENIN_MODEL_DIR for propensity, the uplift directory for uplift).
    """
    _check_kind(kind)
    row = session.get(ModelVersion, (kind, version))
    if row is None:
        raise RegistryError(f"{kind} {version} is not registered")
    if not (Path(model_dir) / version / "card.json").is_file():
        raise RegistryError(f"{kind} {version} has no artifact under {model_dir}")
    previous = serving(session, kind)
    session.execute(
        update(ModelVersion)
        .where(
            ModelVersion.kind == kind,
            ModelVersion.status == "serving",
            ModelVersion.version != version,
        )
        .values(status="retired")
    )
    row.status = "serving"
    session.flush()
    set_current_version(model_dir, version)
    return previous if previous != version else None
