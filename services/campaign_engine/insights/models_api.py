"""`GET /v1/models` (marketer, read-only): which model of each kind serves, every registered
version with its card, and the gate's verdicts and promotion history
(docs/interfaces.md § Decision explanations and forecasts, "Models").

Two places say what serves (modeling/registry.py): the registry's `serving` row and the
CURRENT file the running scorers reload. Both are shown; they differ only for a model that
shipped with tenin and was never registered, or while a promotion is being committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.campaign_engine.modeling import registry
from shared.auth import require_role
from shared.http import Operation
from shared.model.scoring import ModelLoadError, read_current

HISTORY = 50  # promotion records per kind, newest first


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionOut(_Model):
    version: str
    status: str = Field(description="candidate | serving | retired")
    created_at: datetime
    data_window: dict[str, Any] | None = Field(description="from the card: since, until, ...")
    rows: int | None = Field(description="decisions (or rows) it was trained on")
    metrics: dict[str, Any] | None = Field(description="from the card, with 95% intervals")
    card: dict[str, Any] = Field(description="the whole model card")


class ChangeOut(_Model):
    action: str = Field(description="promote | rollback | refuse")
    from_version: str | None
    to_version: str
    actor: str
    at: datetime
    reason: str
    estimates: dict[str, Any] | None = Field(description="the gate's figures (yen per decision)")


class KindOut(_Model):
    kind: str
    serving: str | None = Field(description="the registry's serving version")
    current_file: str | None = Field(description="the version the running scorers load")
    versions: list[VersionOut]
    history: list[ChangeOut]


class ModelsOut(_Model):
    kinds: list[KindOut]


@dataclass(frozen=True)
class ModelsDeps:
    sessions: Callable[[], Session]
    secret: str | Sequence[str]
    model_dirs: dict[str, Path]  # kind -> the directory its CURRENT lives in


def _current(model_dir: Path | None) -> str | None:
    if model_dir is None:
        return None
    try:
        return read_current(model_dir)
    except ModelLoadError:
        return None


def _version_out(v: registry.RegisteredVersion) -> VersionOut:
    card = v.card or {}
    rows = card.get("rows", card.get("training_rows"))
    return VersionOut(
        version=v.version,
        status=v.status,
        created_at=v.created_at,
        data_window=card.get("data_window"),
        rows=int(rows) if isinstance(rows, int | float) else None,
        metrics=v.metrics if v.metrics is not None else card.get("metrics"),
        card=card,
    )


def models_overview(session: Session, model_dirs: dict[str, Path]) -> ModelsOut:
    """Every kind: what serves, its versions with their cards, its promotion history."""
    kinds = []
    for kind in registry.KINDS:
        history = [
            ChangeOut(
                action=c.action,
                from_version=c.from_version,
                to_version=c.to_version,
                actor=c.actor,
                at=c.at,
                reason=c.reason,
                estimates=c.estimates,
            )
            for c in registry.changes(session, kind)[:HISTORY]
        ]
        kinds.append(
            KindOut(
                kind=kind,
                serving=registry.serving(session, kind),
                current_file=_current(model_dirs.get(kind)),
                versions=[_version_out(v) for v in registry.versions(session, kind)],
                history=history,
            )
        )
    return ModelsOut(kinds=kinds)


def models_blueprint(deps: ModelsDeps) -> Blueprint:
    """GET /v1/models."""
    bp = Blueprint("models", __name__)
    marketer = require_role("marketer", sessions=deps.sessions, secret=deps.secret)

    @bp.get("/v1/models")
    @marketer
    def models() -> Response:
        with deps.sessions() as session:
            body = models_overview(session, deps.model_dirs)
        return Response(body.model_dump_json(), status=200, mimetype="application/json")

    return bp


MODEL_OPERATIONS = [
    Operation(
        "GET",
        "/v1/models",
        "Models: which version of each kind serves, every version's card, the promotion history",
        None,
        ModelsOut,
    )
]
