"""Starting and stopping the three services (and the console) as separate processes (demo
and e2e tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

SERVICES = ("campaign_engine", "chat_agent", "redemption_tracker")
# HTTP only, no worker; it reaches the others through their URLs (docs/console.md).
CONSOLE = "console"


@dataclass
class ServiceProcess:
    """One `tenin serve` or `tenin worker` child process and its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        """Spawn the process (its output goes to its log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Block until /healthz answers (HTTP apps) or the process is up (workers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n{self.tail()}")
            if self.health_url is None:
                return
            try:
                if requests.get(self.health_url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy within {timeout}s; see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL: a crash, for tests."""
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        """The end of the log file."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass
class ServiceSet:
    """The three HTTP apps and their workers."""

    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int]
    http_workers: int = 1
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def _tenin(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tenin.cli", *args]

    def start(self, services: tuple[str, ...] = SERVICES) -> None:
        """Start the apps and workers and wait until every app answers /healthz.
        `"console"` among `services` starts the marketer console (no worker) on
        `ports["console"]`, pointed at this set's engine and tracker."""
        for service in services:
            env = self.env
            if service == CONSOLE:
                env = {
                    **self.env,
                    "TENIN_CAMPAIGN_ENGINE_URL": self.url("campaign_engine"),
                    "TENIN_REDEMPTION_TRACKER_URL": self.url("redemption_tracker"),
                }
            self.processes[f"{service}.http"] = ServiceProcess(
                f"{service}.http",
                self._tenin(
                    "serve",
                    service,
                    "--port",
                    str(self.ports[service]),
                    "--workers",
                    str(self.http_workers),
                    "--threads",
                    "8",
                ),
                env,
                self.log_dir / f"{service}.http.log",
                health_url=f"{self.url(service)}/healthz",
            )
            if service == CONSOLE:
                continue
            self.processes[f"{service}.worker"] = ServiceProcess(
                f"{service}.worker",
                self._tenin("worker", service),
                self.env,
                self.log_dir / f"{service}.worker.log",
            )
        for proc in self.processes.values():
            if not proc.alive():
                proc.start()
        for proc in self.processes.values():
            proc.wait_healthy()

    def restart(self, name: str) -> None:
        """Start a stopped or killed process again."""
        proc = self.processes[name]
        proc.start()
        proc.wait_healthy()

    def stop(self) -> None:
        """Stop everything gracefully."""
        for proc in self.processes.values():
            proc.stop()
