"""/readyz with Kafka unreachable (issue 11, finding 4): answers within the budget, keeps
one Kafka client, and a crowd of probes does not slow the routes that matter."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kafka
import pytest
import requests
from werkzeug.serving import make_server

from services.campaign_engine.app import create_app
from shared.config import Settings
from shared.embedded import free_port

BUDGET_S = 2.5  # the probe budget (1.5 s) plus slack for a 2-core CI machine


@pytest.fixture
def kafka_clients(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every kafka-python consumer built from now on (the readiness probe is one)."""
    built: list[object] = []

    class CountedConsumer(kafka.KafkaConsumer):  # type: ignore[misc]  # kafka-python is untyped
        def __init__(self, *topics: Any, **config: Any) -> None:
            built.append(self)
            super().__init__(*topics, **config)

    monkeypatch.setattr(kafka, "KafkaConsumer", CountedConsumer)
    return built


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tenin.db'}",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "TENIN_BROKER_FLAVOR": "kafka",
        "TENIN_DATA_DIR": str(tmp_path),
    }
    app = create_app(Settings.from_env(env))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = requests.get(url, timeout=BUDGET_S * 2).status_code
    except requests.Timeout:
        status = 0
    return status, time.monotonic() - started


def test_readyz_answers_not_ready_within_the_budget_when_kafka_is_down(
    base_url: str, kafka_clients: list[object]
) -> None:
    status, took = timed_get(f"{base_url}/readyz")
    assert status == 503 and took < BUDGET_S, (status, took)
    body = requests.get(f"{base_url}/readyz", timeout=BUDGET_S * 2).json()
    assert body["checks"] == {"database": True, "kafka": False}
    assert len(kafka_clients) == 1


def test_sixteen_concurrent_probes_neither_pile_up_nor_slow_a_normal_route(
    base_url: str, kafka_clients: list[object]
) -> None:
    with ThreadPoolExecutor(max_workers=17) as pool:
        probes = [pool.submit(timed_get, f"{base_url}/readyz") for _ in range(16)]
        time.sleep(0.2)  # the probes are in flight
        normal_status, normal_took = timed_get(f"{base_url}/healthz")
        answers = [p.result() for p in probes]
    assert normal_status == 200 and normal_took < 0.5, normal_took
    assert all(status == 503 and took < BUDGET_S for status, took in answers), answers
    again = [timed_get(f"{base_url}/readyz") for _ in range(3)]
    assert all(status == 503 and took < 0.5 for status, took in again), again  # cached
    assert len(kafka_clients) == 1
