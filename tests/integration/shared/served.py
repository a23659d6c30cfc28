"""A service run as operators run it: `tenin serve` (gunicorn) in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def wait_for_http(url: str, deadline_s: float = 60.0) -> requests.Response:
    """The first answer from `url`, retrying while the server is still starting."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return requests.get(url, timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def tenin_serve(
    service: str, port: int, env: dict[str, str], log: Path, *args: str
) -> Iterator[str]:
    """`tenin serve SERVICE --port PORT ARGS…` until the block ends; yields its base URL."""
    argv = [sys.executable, "-m", "tenin.cli", "serve", service, "--port", str(port), *args]
    with log.open("wb") as out:
        server = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(f"{base}/healthz").status_code == 200, log.read_text()[-3000:]
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        print(log.read_text(errors="replace")[-3000:])
