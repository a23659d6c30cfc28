"""The redemption_tracker schema: its tables (one metadata shared with every service)."""

from __future__ import annotations

from shared.db import Base
from shared.idempotency import ProcessedEventMixin
from shared.outbox import OutboxMixin

SCHEMA = "redemption_tracker"


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
    __table_args__ = {"schema": SCHEMA}


class ProcessedEvent(ProcessedEventMixin, Base):
    __tablename__ = "processed_events"
    __table_args__ = {"schema": SCHEMA}
