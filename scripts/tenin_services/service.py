"""What every service offers the commands, and the pid-file tracking Redis and Kafka share."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .process import log, stop_pid, tracked_pid


class Service(Protocol):
    """One of the servers `scripts/services` manages (PostgreSQL, Redis or Kafka)."""

    name: str
    env_var: str  # the variable `up` exports, and through which an external one is reused
    url: str  # what `up` exports for our own instance

    def external(self) -> str | None:
        """The value of `env_var` if it names a reachable server other than ours."""
        ...

    def ready(self) -> bool:
        """True if our own instance runs and answers."""
        ...

    def missing_packages(self) -> list[str]:
        """Debian packages to install before start() can work."""
        ...

    def start(self) -> None:
        """Start our instance (or adopt one already there); may return before it is ready."""
        ...

    def wait_ready(self) -> None:
        """Return once the instance started by start() answers; raise ServiceError if not."""
        ...

    def stop(self) -> bool:
        """Stop our instance; True if one was running."""
        ...

    def status(self) -> tuple[bool, str]:
        """Whether our instance runs, and a line describing it."""
        ...


class PidfileServer:
    """A server we launch ourselves and find again through its pid file, checked against
    `marker` (a string its command line contains, see process.pid_alive)."""

    name: str
    pidfile: Path
    marker: str
    stop_timeout: float  # seconds between SIGTERM and SIGKILL

    def _running(self) -> bool:
        return tracked_pid(self.pidfile, self.marker) is not None

    def stop(self) -> bool:
        """Stop our server if it runs (found through its pid file or /proc); True if it did."""
        pid = tracked_pid(self.pidfile, self.marker)
        if pid is None:
            return False
        log(f"stopping {self.name} (pid {pid})")
        stop_pid(pid, self.name, self.stop_timeout)
        self.pidfile.unlink(missing_ok=True)
        return True
