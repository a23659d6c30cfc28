"""The archive `tenin model prune-logs` writes before it deletes (modeling/retention.py): each
batch of each table as one complete gzip CSV (every column, header first), synced to disk
before the batch's delete commits, so a crash loses nothing."""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.campaign_engine.models import Decision
from shared.db import Base


def archive_batch(
    directory: Path, before: datetime, batch: int, rows: Sequence[Any], model: type[Base] = Decision
) -> Path:
    """Write one batch of one table as a complete gzip CSV (header first) and sync it to disk."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = [c.key for c in model.__table__.columns]
    path = directory / f"{model.__tablename__}-before-{before:%Y%m%dT%H%M%SZ}-{batch:05d}.csv.gz"
    with open(path, "wb") as raw:
        with gzip.open(raw, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(_row(r, columns) for r in rows)
        raw.flush()
        os.fsync(raw.fileno())
    return path


@dataclass
class Archive:
    """Numbers the batches of a run; with a directory, archives each batch's tables."""

    directory: Path | None
    before: datetime
    batches: int = 0

    def batch(self, *tables: tuple[type[Base], Sequence[Any]]) -> None:
        """Called before the batch's delete: its rows on disk first, a file per table."""
        self.batches += 1
        for model, rows in tables:
            if self.directory is not None and rows:
                archive_batch(self.directory, self.before, self.batches, rows, model)


def _row(row: Any, columns: list[str]) -> list[Any]:
    out = []
    for key in columns:
        value = getattr(row, key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, list | dict):
            value = json.dumps(value, separators=(",", ":"))
        out.append(value)
    return out
