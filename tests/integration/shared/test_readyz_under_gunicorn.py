"""/readyz under gunicorn's bounded thread pool with Kafka unreachable (issue 11, finding
4): a crowd of probes must not take the threads a normal route needs."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from shared.embedded import free_port
from tests.integration.shared.served import tenin_serve


def timed(url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = requests.get(url, timeout=10).status_code
    except requests.Timeout:
        status = 0
    return status, time.monotonic() - started


def test_sixteen_probes_on_four_threads_leave_room_for_other_routes(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env |= {
        "DATABASE_URL": sqlite_url,
        "TENIN_DATA_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nothing listens
        "TENIN_BROKER_FLAVOR": "kafka",
    }
    args = ("--workers", "1", "--threads", "4")
    with tenin_serve("campaign_engine", free_port(), env, tmp_path / "serve.log", *args) as url:
        status, took = timed(f"{url}/readyz")  # the first probe waits the budget, at most
        assert status == 503 and took < 2.5, (status, took)
        with ThreadPoolExecutor(max_workers=17) as pool:
            probes = [pool.submit(timed, f"{url}/readyz") for _ in range(16)]
            normal = pool.submit(timed, f"{url}/openapi.json")
            answers = [p.result() for p in probes]
            normal_status, normal_took = normal.result()
    assert all(status == 503 and took < 1.0 for status, took in answers), answers
    assert normal_status == 200 and normal_took < 1.0, normal_took
