"""Redis: an external one from REDIS_URL, or our own redis-server on REDIS_PORT.

(Named redis_server, not redis, so that it can never be mistaken for the redis client
package the app uses.)
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import unquote, urlsplit

from .config import HOST, REDIS_PORT, STATE
from .probes import is_loopback, redis_probe, tcp_open
from .process import ServiceError, log, read_pid, run, tail, wait_until
from .service import PidfileServer


class Redis(PidfileServer):
    """Our redis-server: daemonized, no persistence, tracked through its pid file."""

    name = "redis"
    env_var = "REDIS_URL"
    stop_timeout = 20

    def __init__(self) -> None:
        self.port = REDIS_PORT
        self.url = f"redis://{HOST}:{self.port}/0"
        self.dir = STATE / "redis"
        self.pidfile = self.dir / "redis.pid"
        # A running redis-server shows itself as "/usr/bin/redis-server 127.0.0.1:PORT".
        self.marker = f"redis-server {HOST}:{self.port}"

    def external(self) -> str | None:
        """REDIS_URL if it names another Redis that answers (with its credentials)."""
        url = os.environ.get(self.env_var, "")
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            log(f"ignoring {self.env_var} (not a redis:// URL)")
            return None
        host, port = parts.hostname or "", parts.port or 6379
        if not host or (is_loopback(host) and port == self.port):
            return None
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        # TLS (rediss://) cannot be spoken here; an open port has to do.
        reachable = (
            tcp_open(host, port)
            if parts.scheme == "rediss"
            else redis_probe(host, port, user, password)
        )
        if not reachable:
            log(f"{self.env_var} points at {host}:{port}, which does not answer; starting our own")
            return None
        return url

    def ready(self) -> bool:
        """True if our redis-server runs and answers PING."""
        return self._running() and redis_probe(HOST, self.port)

    def missing_packages(self) -> list[str]:
        """`redis-server` unless it is here."""
        return [] if self._binary() else ["redis-server"]

    @staticmethod
    def _binary() -> str | None:
        return shutil.which("redis-server") or next(
            (
                p
                for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
                if os.access(p, os.X_OK)
            ),
            None,
        )

    def start(self) -> None:
        """Start redis-server (or adopt one on our port) and wait until it answers PING."""
        if self._running():
            log(f"redis already running (pid {read_pid(self.pidfile)}); waiting for it")
        elif tcp_open(HOST, self.port):
            if not redis_probe(HOST, self.port):
                raise ServiceError(
                    f"port {self.port} is taken by something that is not Redis; "
                    "stop it or set TENIN_REDIS_PORT"
                )
            log(f"port {self.port} already serves Redis (untracked); reusing it")
            return
        else:
            self._launch()
        if not wait_until(lambda: redis_probe(HOST, self.port), 20):
            raise ServiceError(
                f"redis did not answer PING; log tail:\n{tail(self.dir / 'redis.log')}"
            )

    def _launch(self) -> None:
        binary = self._binary()
        if not binary:
            raise ServiceError("redis-server not found even after installing")
        self.dir.mkdir(parents=True, exist_ok=True)
        log(f"starting redis on {HOST}:{self.port} (log {self.dir / 'redis.log'})")
        # No persistence (test data), daemonized with a pid file we can stop later.
        run(
            [
                binary,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.dir / "redis.log"),
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            cwd=self.dir,
        )

    def wait_ready(self) -> None:
        """Nothing to wait for: start() waits."""

    def status(self) -> tuple[bool, str]:
        """Whether our redis-server runs, with its pid and URL."""
        if self._running():
            return True, f"running  pid {read_pid(self.pidfile)}  {self.url}"
        return False, "stopped"
