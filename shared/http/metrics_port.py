"""The internal metrics port (docs/interfaces.md § Operator interface).

`tenin serve --metrics-port N` (or `TENIN_METRICS_PORT`) loads this module as gunicorn's
config file. Its hooks run in the gunicorn master: once the workers are up it serves
/metrics on `TENIN_METRICS_HOST` (default 127.0.0.1) port N from the prometheus
multiprocess folder, so every worker's (and the service worker's) counters show in one
scrape, away from the public port. When a worker exits its live gauges are dropped.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess, start_http_server

from shared.http.ops import metrics_registry

PORT_VARIABLE = "TENIN_METRICS_PORT"
HOST_VARIABLE = "TENIN_METRICS_HOST"


def when_ready(server: Any) -> None:
    """gunicorn hook: start the metrics HTTP server in the master process."""
    port = os.environ.get(PORT_VARIABLE, "")
    if not port:
        return
    host = os.environ.get(HOST_VARIABLE, "127.0.0.1")
    start_http_server(int(port), addr=host, registry=metrics_registry())
    server.log.info(f"metrics on http://{host}:{port}/metrics")


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: a dead worker's live gauges no longer count."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
