"""Running commands and tracking the servers we start: logging, pid files, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .config import IS_ROOT, STATE


class ServiceError(Exception):
    """A failure the operator must see; printed without a traceback."""


def log(message: str) -> None:
    """Say something to the operator, on stderr (stdout is for the export lines)."""
    print(f"[services] {message}", file=sys.stderr, flush=True)


def run(
    cmd: list[str],
    *,
    user: str | None = None,
    check: bool = True,
    capture: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with stdin closed and its output sent to stderr (or captured).

    stdout must never reach our stdout: that one is reserved for the export lines.
    `user` runs it as another OS user (root cannot run initdb/postgres).
    """
    if user and IS_ROOT and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else sys.stderr,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = ((proc.stdout or "") + (proc.stderr or "")).strip()[-4000:] if capture else ""
        raise ServiceError(
            f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{detail}".rstrip()
        )
    return proc


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------- pids


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None if there is none."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _proc_state(pid: int) -> str | None:
    """The one-letter state in /proc/<pid>/stat ("Z": zombie), None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return None


def pid_alive(pid: int | None, marker: str) -> bool:
    """True if `pid` is a live process whose command line contains `marker`.

    The marker guards against pid reuse: after a reboot or a CI sandbox reset a stale
    pid file may name an unrelated process, which we must neither trust nor kill.
    """
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    state = _proc_state(pid)
    if state is None or state == "Z":  # zombie: already dead
        return False
    return marker.encode() in cmdline


def _is_zombie(pid: int) -> bool:
    """True if `pid` has exited (a zombie, or gone from /proc)."""
    return _proc_state(pid) in (None, "Z")


def stop_pid(pid: int, name: str, timeout: float) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), timeout):
        log(f"{name} did not stop within {timeout:.0f}s; killing pid {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def find_pid(marker: str) -> int | None:
    """The live process whose command line contains `marker`, found through /proc.

    Lets us track a server of ours again after its pid file was lost (e.g. the
    state dir was deleted while it ran), so `down` can still stop it.
    """
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and pid != os.getpid() and pid_alive(pid, marker):
            return pid
    return None


def tracked_pid(pidfile: Path, marker: str) -> int | None:
    """Pid of our running server: from its pid file, else recovered from /proc."""
    pid = read_pid(pidfile)
    if pid_alive(pid, marker):
        return pid
    pid = find_pid(marker)
    if pid:
        log(f"found {marker!r} running as pid {pid} without a valid pid file; tracking it again")
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{pid}\n")
    return pid


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialise `up`/`down` runs: a second `up` started meanwhile waits, then finds
    everything running and only prints the exports."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another `scripts/services` run holds the lock; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
