"""Where each service's outbox relay runs (TENIN_OUTBOX_RELAY, docs/scaling.md § Relay
processes): in every worker (the default), or in `tenin relay <service>` processes, when a
worker runs none and its loops publish nothing themselves. On PostgreSQL (the setting is
refused elsewhere); the drop end to end with relay processes SIGKILLed is in
tests/e2e/test_drop.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.campaign_engine import worker as engine_worker
from services.campaign_engine.bootstrap import bootstrap as engine_bootstrap
from services.chat_agent import worker as chat_worker
from services.redemption_tracker import worker as tracker_worker
from services.redemption_tracker.bootstrap import bootstrap as tracker_bootstrap
from shared.bus import InMemoryBroker
from shared.config import ConfigError, Settings

RELAYS = {
    "campaign_engine": "outbox_relay",
    "chat_agent": "outbox-relay",
    "redemption_tracker": "redemption_tracker.outbox",
}


def _parts(service: str, settings: Settings) -> set[str]:
    broker = InMemoryBroker()
    if service == "campaign_engine":
        return set(engine_worker.components(engine_bootstrap(settings, pre_ping=False), broker))
    if service == "chat_agent":
        return set(chat_worker.components(chat_worker.worker_dependencies(settings), broker))
    return set(tracker_worker.components(tracker_bootstrap(settings), broker))


@pytest.mark.parametrize("service", sorted(RELAYS))
def test_a_worker_runs_its_relay_unless_relay_processes_do(
    real_settings: Settings, pg_url: str, service: str
) -> None:
    settings = replace(real_settings, database_url=pg_url, service=service)
    assert RELAYS[service] in _parts(service, settings)
    without = _parts(service, replace(settings, outbox_relay="process"))
    assert RELAYS[service] not in without
    assert without == _parts(service, settings) - {RELAYS[service]}, "all else is the same"


def test_relay_processes_need_postgresql(pg_url: str) -> None:
    given = {"DATABASE_URL": pg_url, "TENIN_OUTBOX_RELAY": "process"}
    assert Settings.from_env(given).outbox_relay == "process"
    assert Settings.from_env({"DATABASE_URL": pg_url}).outbox_relay == "thread"
    with pytest.raises(ConfigError, match="needs a PostgreSQL DATABASE_URL"):
        Settings.from_env({"TENIN_OUTBOX_RELAY": "process"})  # the embedded default
    with pytest.raises(ConfigError, match="needs a PostgreSQL DATABASE_URL"):
        Settings.from_env({**given, "DATABASE_URL": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match="TENIN_OUTBOX_RELAY must be thread or process"):
        Settings.from_env({**given, "TENIN_OUTBOX_RELAY": "sidecar"})
