"""Finding what the servers need on this machine, and installing it with apt-get."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .config import IS_ROOT
from .process import ServiceError, log, run


def apt_install(packages: list[str]) -> None:
    """Install Debian packages non-interactively (works with CI=true and no stdin)."""
    if not shutil.which("apt-get"):
        raise ServiceError(
            f"missing {', '.join(packages)} and no apt-get here: install them by hand"
        )
    prefix: list[str] = []
    if not IS_ROOT:
        if not shutil.which("sudo"):
            raise ServiceError(
                f"missing {', '.join(packages)}: run as root or install them by hand"
            )
        prefix = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", NEEDRESTART_MODE="a")
    apt = [*prefix, "apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    log(f"installing {' '.join(packages)} with apt-get")
    run([*apt, "update"], env=env)
    run([*apt, "install", "-y", "--no-install-recommends", *packages], env=env)


def java_major(java: str) -> int:
    """The major version of a java binary (8 for "1.8.0_x"), 0 if it cannot tell."""
    proc = run([java, "-version"], capture=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str | None:
    """A java >= 17 (Kafka 4.x brokers need 17+): JAVA_HOME, PATH, then /usr/lib/jvm."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java") or "")
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java"))
    for java in candidates:
        if os.access(java, os.X_OK) and java_major(java) >= 17:
            return java
    return None


def pg_bindir() -> Path | None:
    """Newest /usr/lib/postgresql/<N>/bin (Debian layout), else wherever pg_ctl is."""
    if os.environ.get("TENIN_PG_BINDIR"):
        return Path(os.environ["TENIN_PG_BINDIR"])
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if found:
        return max(found, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).resolve().parent / "initdb").exists():
        return Path(pg_ctl).resolve().parent
    return None
