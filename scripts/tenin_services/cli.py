"""The commands: `up`, `down` and `status` (see the package docstring)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess

from .config import STATE
from .install import apt_install
from .kafka_broker import Kafka
from .postgres import Postgres
from .process import ServiceError, log, run, state_lock
from .redis_server import Redis
from .service import Service


def all_services() -> list[Service]:
    """PostgreSQL, Redis and Kafka, in the order `status` lists them."""
    return [Postgres(), Redis(), Kafka()]


def cmd_up() -> int:
    """Start (or reuse) all three, then print their `export NAME=value` lines."""
    exports: dict[str, str] = {}
    own = []
    for svc in all_services():
        external = svc.external()
        if external:
            log(f"reusing {svc.name} from {svc.env_var}")
            exports[svc.env_var] = external
        else:
            own.append(svc)

    # Fast path (no lock, nothing to do): everything of ours is already up.
    if not all(svc.ready() for svc in own):
        with state_lock():
            todo = [svc for svc in own if not svc.ready()]  # re-check: another run may have won
            packages = sorted({pkg for svc in todo for pkg in svc.missing_packages()})
            if packages:
                apt_install(packages)
            # Kafka first: its JVM boots in the background while the others start.
            todo.sort(key=lambda svc: svc.name != "kafka")
            for svc in todo:
                svc.start()
            for svc in todo:
                svc.wait_ready()

    for svc in own:
        exports[svc.env_var] = svc.url
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        print(f"export {name}={shlex.quote(exports[name])}")
    return 0


def cmd_down() -> int:
    """Stop what `up` started (Kafka first); externals are left alone."""
    with state_lock():
        stopped = [svc.name for svc in reversed(all_services()) if svc.stop()]
    log(f"stopped {', '.join(stopped)}" if stopped else "nothing of ours was running")
    return 0


def cmd_status() -> int:
    """Exit 0 when all three are running (ours or reusable externals), else 3."""
    all_up = True
    print(f"state dir: {STATE}")
    for svc in all_services():
        running, text = svc.status()
        external = None if running else svc.external()
        if external:
            running, text = True, f"external {svc.env_var}={external} (reachable; `up` reuses it)"
        all_up &= running
        print(f"{svc.name:<9}{text}")
    return 0 if all_up else 3


def browser_packages() -> list[str]:
    """What the browser tests miss: chromium, and a Japanese font for the ja pages."""
    missing = [] if shutil.which("chromium") else ["chromium"]
    fc_list = shutil.which("fc-list")  # fontconfig, which chromium pulls in
    ja_fonts = run([fc_list, ":lang=ja"], capture=True, check=False).stdout if fc_list else ""
    return missing if ja_fonts.strip() else [*missing, "fonts-ipafont-gothic"]


def cmd_browser() -> int:
    """Install Debian's Chromium (and a Japanese font) when missing, print chromium's path."""
    if browser_packages():
        with state_lock():
            packages = browser_packages()  # re-check: another run may have installed them
            if packages:
                apt_install(packages)
    found = shutil.which("chromium")
    if not found:
        raise ServiceError("chromium is still not on PATH after installing it")
    log(f"chromium: {found}")
    print(found)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the command, turn ServiceError into exit code 1."""
    parser = argparse.ArgumentParser(
        prog="scripts/services",
        description="Start/stop the PostgreSQL, Redis and Kafka that tenin's tests use.",
    )
    parser.add_argument("command", choices=["up", "down", "status", "browser"])
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "browser": cmd_browser}
    try:
        return commands[args.command]()
    except ServiceError as exc:
        log(f"ERROR: {exc}")
        return 1
    except subprocess.TimeoutExpired as exc:
        log(f"ERROR: timed out: {exc}")
        return 1
