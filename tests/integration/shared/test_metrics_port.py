"""`tenin serve --metrics-port`: metrics on an internal port, not on the public one
(issue 11, "/metrics is served on an internal port")."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from shared.embedded import free_port
from tests.integration.shared.served import tenin_serve, wait_for_http


def test_serve_opens_an_internal_metrics_port_and_hides_public_metrics(
    sqlite_url: str, tmp_path: Path
) -> None:
    internal = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"DATABASE_URL": sqlite_url, "TENIN_DATA_DIR": str(tmp_path)}
    args = ("--workers", "1", "--threads", "2", "--metrics-port", str(internal))
    with tenin_serve("redemption_tracker", free_port(), env, tmp_path / "serve.log", *args) as url:
        requests.post(f"{url}/v1/pos/transactions", json={}, timeout=5)
        scraped = wait_for_http(f"http://127.0.0.1:{internal}/metrics")
        assert scraped.status_code == 200
        assert "tenin_rt_" in scraped.text  # the workers' own counters, aggregated
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 404
