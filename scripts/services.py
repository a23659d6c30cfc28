#!/usr/bin/env python3
"""Start, stop and inspect the real services tenin's tests need, without Docker.

    scripts/services up       install what is missing, start (or reuse) PostgreSQL,
                              Redis and Apache Kafka (KRaft, single node), then print
                              `export NAME=value` lines -- and nothing else -- on stdout
    scripts/services down     stop what `up` started (found through pid files)
    scripts/services status   say what is running

Everything except the export lines goes to stderr so `eval "$(scripts/services up)"`
works. Only the Python standard library is used: this runs before any virtualenv.

Where things live (all outside the git work tree, so a fresh clone reuses them):
    $TENIN_SERVICES_HOME (default ~/.cache/tenin/services)   data dirs, pid files, logs
    ~/.cache/tenin/kafka-libs/<version>-<pom hash>/          the broker's jars
    ~/.cache/tenin/m2/                                       Maven's local repository

Ports (all on 127.0.0.1, chosen to never collide with a system instance) can be moved
with TENIN_POSTGRES_PORT, TENIN_REDIS_PORT, TENIN_KAFKA_PORT, TENIN_KAFKA_CONTROLLER_PORT.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
KAFKA_POM = REPO / "scripts" / "kafka" / "pom.xml"

HOME = Path(os.path.expanduser("~"))
CACHE_ROOT = Path(os.environ.get("TENIN_CACHE_HOME") or HOME / ".cache" / "tenin").absolute()
STATE = (
    Path(os.environ.get("TENIN_SERVICES_HOME") or CACHE_ROOT / "services").expanduser().absolute()
)

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("TENIN_POSTGRES_PORT", "55432"))
REDIS_PORT = int(os.environ.get("TENIN_REDIS_PORT", "56379"))
KAFKA_PORT = int(os.environ.get("TENIN_KAFKA_PORT", "59092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("TENIN_KAFKA_CONTROLLER_PORT", "59093"))
KAFKA_START_TIMEOUT = float(os.environ.get("TENIN_KAFKA_START_TIMEOUT", "90"))

IS_ROOT = os.geteuid() == 0


class ServiceError(Exception):
    """A failure the operator must see; printed without a traceback."""


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
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
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
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
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: already dead
        return False
    return marker.encode() in cmdline


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


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


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


# --------------------------------------------------------------------------- probes
# Tiny wire-protocol checks, so "reachable" means the right server answers, not just
# that some port is open.


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def postgres_probe(host: str, port: int) -> bool:
    """Send an SSLRequest; any PostgreSQL server answers with one byte, 'S' or 'N'."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            sock.sendall(struct.pack(">ii", 8, 80877103))
            return _recv_exact(sock, 1) in (b"S", b"N")
    except (OSError, EOFError):
        return False


def redis_probe(
    host: str, port: int, username: str | None = None, password: str | None = None
) -> bool:
    """AUTH (if the URL has a password) then PING; expect +PONG."""

    def command(*args: str) -> bytes:
        out = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        return out

    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            if password:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                sock.sendall(command(*auth))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(command("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def kafka_probe(host: str, port: int) -> bool:
    """Send a MetadataRequest (v4, which Kafka 4.x still serves) and require at least
    one registered broker in the answer: the broker is then ready for clients."""
    client_id = b"tenin-services"
    # header: api_key=3 (Metadata), api_version=4, correlation_id, client_id
    # body: topics=null (all topics), allow_auto_topic_creation=false
    request = struct.pack(">hhih", 3, 4, 42, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(3)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            response = _recv_exact(sock, size)
        # response: correlation_id, throttle_time_ms, brokers[] count, ...
        correlation_id, _throttle, brokers = struct.unpack_from(">iii", response, 0)
        return correlation_id == 42 and brokers >= 1
    except (OSError, EOFError, struct.error):
        return False


# --------------------------------------------------------------------------- installing


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


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    name = "postgres"
    env_var = "DATABASE_URL"

    def __init__(self) -> None:
        self.port = PG_PORT
        self.url = f"postgresql+psycopg://tenin:tenin@{HOST}:{self.port}/tenin"
        # STATE/postgres is the cluster's root dir, or a symlink to it (see _prepare_root).
        self.link = STATE / "postgres"

    # -- external reuse
    def external(self) -> str | None:
        url = os.environ.get(self.env_var, "")
        if not url:
            return None
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            log(f"ignoring {self.env_var} ({parts.scheme or 'no'} scheme, not PostgreSQL)")
            return None
        host, port = parts.hostname or "", parts.port or 5432
        if not host or (is_loopback(host) and port == self.port):
            return None  # a socket URL we cannot probe, or our own instance
        if not postgres_probe(host, port):
            log(f"{self.env_var} points at {host}:{port}, which does not answer; starting our own")
            return None
        # The app wants SQLAlchemy's psycopg 3 form; keep any other explicit driver.
        if parts.scheme in ("postgres", "postgresql"):
            url = "postgresql+psycopg" + url[len(parts.scheme) :]
        return url

    # -- layout
    @property
    def os_user(self) -> str:
        return "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name

    def root(self) -> Path | None:
        return self.link.resolve() if self.link.exists() else None

    def _postmaster_pid(self, root: Path) -> int | None:
        return read_pid(root / "data" / "postmaster.pid")

    def _running(self, root: Path | None) -> bool:
        return root is not None and pid_alive(self._postmaster_pid(root), str(root / "data"))

    def ready(self) -> bool:
        root = self.root()
        return (
            self._running(root)
            and root is not None
            and (root / "provisioned").exists()
            and postgres_probe(HOST, self.port)
        )

    # -- install
    def missing_packages(self) -> list[str]:
        return [] if pg_bindir() else ["postgresql"]

    def _ensure_os_user(self) -> None:
        if not IS_ROOT:
            return
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            log(f"creating system user {self.os_user} to run the cluster (root cannot)")
            run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    self.os_user,
                ]
            )

    def _can_traverse(self, path: Path) -> bool:
        if not IS_ROOT:
            return True
        return run(["test", "-x", str(path)], user=self.os_user, check=False).returncode == 0

    def _chown(self, path: Path) -> None:
        if IS_ROOT:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_root(self) -> Path:
        """Pick where the cluster lives.

        Root cannot run PostgreSQL, so the cluster runs as the `postgres` user; but
        the default state dir is under /root, which that user cannot enter (mode 700).
        In that case the cluster lives in /var/lib/tenin-services/<hash of state dir>
        and STATE/postgres is a symlink to it. A state dir without that symlink is a
        fresh state: a cluster left there by a deleted state dir is discarded.
        """
        root = self.root()
        if root is not None:
            return root
        if self.link.is_symlink():  # dangling: its target was deleted
            self.link.unlink()
        STATE.mkdir(parents=True, exist_ok=True)
        if self._can_traverse(STATE):
            self.link.mkdir()
            self._chown(self.link)
            return self.link.resolve()
        key = hashlib.sha256(str(STATE).encode()).hexdigest()[:12]
        parent = Path("/var/lib/tenin-services")
        root = parent / key
        if root.exists():
            self._stop_cluster(root)
            shutil.rmtree(root)
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o755)  # the postgres user must be able to enter it
        root.mkdir()
        self._chown(root)
        self.link.symlink_to(root)
        log(
            f"{self.os_user} cannot enter {STATE}; cluster lives in {root} (linked from {self.link})"
        )
        return root

    def _socket_dir(self, root: Path) -> Path:
        # Unix socket paths are limited to ~107 bytes.
        run_dir = root / "run"
        return run_dir if len(str(run_dir)) < 90 else Path("/tmp")

    # -- start
    def start(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL binaries not found even after installing")
        self._ensure_os_user()
        root = self._prepare_root()
        data = root / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(bindir, root)
        self._write_conf(root)
        if self._running(root):
            log(f"postgres already running (pid {self._postmaster_pid(root)})")
        elif tcp_open(HOST, self.port):
            self._adopt_or_fail(bindir)
            return
        else:
            self._pg_ctl_start(bindir, root)
        self._provision(bindir, root)

    def wait_ready(self) -> None:
        pass  # start() returns only once the cluster accepts connections

    def _initdb(self, bindir: Path, root: Path) -> None:
        data = root / "data"
        if data.exists():  # a half-done initdb from an interrupted run
            shutil.rmtree(data)
        log(f"initdb {data}")
        # Captured: initdb's chatter only matters when it fails (then it is shown).
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            user=self.os_user,
            cwd=root,
            capture=True,
        )
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\n# tenin test settings, rewritten by scripts/services on each start\n")
            fh.write("include_if_exists = 'tenin.conf'\n")

    def _write_conf(self, root: Path) -> None:
        socket_dir = self._socket_dir(root)
        if socket_dir != Path("/tmp"):
            socket_dir.mkdir(exist_ok=True)
            self._chown(socket_dir)
        conf = root / "data" / "tenin.conf"
        # Durability off: these clusters hold throwaway test data and must be fast.
        conf.write_text(
            f"listen_addresses = '{HOST}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "max_connections = 300\n"
            "shared_buffers = 128MB\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
        )
        self._chown(conf)

    def _pg_ctl_start(self, bindir: Path, root: Path) -> None:
        data = root / "data"
        pidfile = data / "postmaster.pid"
        if pidfile.exists():  # stale (checked by _running): would make pg_ctl refuse
            pidfile.unlink()
        log(f"starting postgres on {HOST}:{self.port} (log {root / 'postgresql.log'})")
        proc = run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(data),
                "-l",
                str(root / "postgresql.log"),
            ],
            user=self.os_user,
            cwd=root,
            check=False,
        )
        if proc.returncode != 0:
            raise ServiceError(
                f"postgres did not start; log tail:\n{tail(root / 'postgresql.log')}"
            )

    def _psql(self, bindir: Path, root: Path, sql: str) -> str:
        cmd = [
            str(bindir / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self._socket_dir(root)),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ]
        return run(cmd, user=self.os_user, cwd=root, capture=True).stdout.strip()

    def _provision(self, bindir: Path, root: Path) -> None:
        """Role `tenin` (superuser: tests create schemas) and database `tenin`."""
        self._psql(
            bindir,
            root,
            """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenin') THEN
                CREATE ROLE tenin LOGIN SUPERUSER PASSWORD 'tenin';
              END IF;
            END $$;""",
        )
        if not self._psql(bindir, root, "SELECT 1 FROM pg_database WHERE datname = 'tenin'"):
            self._psql(bindir, root, "CREATE DATABASE tenin OWNER tenin")
        (root / "provisioned").touch()

    def _adopt_or_fail(self, bindir: Path) -> None:
        """Something untracked holds our port (e.g. a server whose state dir was
        deleted). Reuse it if our credentials work there, else say so."""
        url = self.url.replace("+psycopg", "")
        env = dict(os.environ, PGCONNECT_TIMEOUT="3")
        ok = (
            run(
                [str(bindir / "psql"), "-X", "-q", "-c", "SELECT 1", url],
                capture=True,
                check=False,
                env=env,
            ).returncode
            == 0
        )
        if not ok:
            raise ServiceError(
                f"port {self.port} is taken by something that is not our "
                "PostgreSQL; stop it or set TENIN_POSTGRES_PORT"
            )
        log(f"port {self.port} already serves PostgreSQL with tenin/tenin (untracked); reusing it")

    # -- stop / status
    def _stop_cluster(self, root: Path) -> None:
        bindir = pg_bindir()
        if self._running(root) and bindir:
            log(f"stopping postgres (pid {self._postmaster_pid(root)})")
            run(
                [
                    str(bindir / "pg_ctl"),
                    "stop",
                    "-w",
                    "-t",
                    "60",
                    "-m",
                    "fast",
                    "-D",
                    str(root / "data"),
                ],
                user=self.os_user,
                cwd=root,
                check=False,
            )

    def stop(self) -> bool:
        root = self.root()
        if not self._running(root):
            return False
        assert root is not None
        self._stop_cluster(root)
        return True

    def status(self) -> tuple[bool, str]:
        root = self.root()
        if self._running(root):
            assert root is not None
            return (
                True,
                f"running  pid {self._postmaster_pid(root)}  {self.url}  (data {root / 'data'})",
            )
        return False, "stopped"


# --------------------------------------------------------------------------- Redis


class Redis:
    name = "redis"
    env_var = "REDIS_URL"

    def __init__(self) -> None:
        self.port = REDIS_PORT
        self.url = f"redis://{HOST}:{self.port}/0"
        self.dir = STATE / "redis"
        self.pidfile = self.dir / "redis.pid"
        # A running redis-server shows itself as "/usr/bin/redis-server 127.0.0.1:PORT".
        self.marker = f"redis-server {HOST}:{self.port}"

    def external(self) -> str | None:
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

    def _running(self) -> bool:
        return tracked_pid(self.pidfile, self.marker) is not None

    def ready(self) -> bool:
        return self._running() and redis_probe(HOST, self.port)

    def missing_packages(self) -> list[str]:
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
        pass

    def stop(self) -> bool:
        pid = tracked_pid(self.pidfile, self.marker)
        if pid is None:
            return False
        log(f"stopping redis (pid {pid})")
        stop_pid(pid, "redis", 20)
        self.pidfile.unlink(missing_ok=True)
        return True

    def status(self) -> tuple[bool, str]:
        if self._running():
            return True, f"running  pid {read_pid(self.pidfile)}  {self.url}"
        return False, "stopped"


# --------------------------------------------------------------------------- Kafka


LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/services. The broker logs through SLF4J -> log4j2 into this file. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log}" filePattern="{log}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


class Kafka:
    name = "kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"

    def __init__(self) -> None:
        self.port = KAFKA_PORT
        self.controller_port = KAFKA_CONTROLLER_PORT
        self.url = f"{HOST}:{self.port}"
        self.dir = STATE / "kafka"
        self.data = self.dir / "data"
        self.props = self.dir / "server.properties"
        self.pidfile = self.dir / "kafka.pid"
        self.log_file = self.dir / "server.log"
        self.stdout_file = self.dir / "stdout.log"
        self.marker = f"kafka.Kafka {self.props}"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- external reuse
    def external(self) -> str | None:
        servers = os.environ.get(self.env_var, "").strip()
        if not servers:
            return None
        for entry in servers.split(","):
            address = entry.strip().split("://")[-1]
            host, _, port = address.rpartition(":")
            host = host.strip("[]")
            if not host or not port.isdigit():
                continue
            if is_loopback(host) and int(port) == self.port:
                return None  # our own broker
            if kafka_probe(host, int(port)):
                return servers
        log(f"{self.env_var}={servers} does not answer; starting our own")
        return None

    # -- jars
    @staticmethod
    def version() -> str:
        match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
        if not match:
            raise ServiceError(f"no <kafka.version> in {KAFKA_POM}")
        return match.group(1)

    def libs_dir(self) -> Path:
        # Keyed by the POM's content: editing the POM resolves a fresh set of jars.
        digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:10]
        return CACHE_ROOT / "kafka-libs" / f"{self.version()}-{digest}"

    def _libs_ready(self) -> bool:
        return (self.libs_dir() / ".complete").exists()

    def ensure_libs(self) -> Path:
        """Resolve kafka_2.13 and its runtime deps with Maven into the cache (once)."""
        libs = self.libs_dir()
        if self._libs_ready():
            return libs
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError("mvn not found even after installing")
        staging = libs.with_name(libs.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log(f"resolving Kafka {self.version()} jars with Maven into {libs} (first run only)")
        run(
            [
                mvn,
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(KAFKA_POM),
                f"-Dmaven.repo.local={CACHE_ROOT / 'm2'}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            cwd=KAFKA_POM.parent,
        )
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"Maven finished but {staging} holds no kafka_2.13 jar")
        (staging / ".complete").touch()
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)  # atomic: a half-copied set is never used
        return libs

    # -- state
    def _running(self) -> bool:
        return tracked_pid(self.pidfile, self.marker) is not None

    def ready(self) -> bool:
        return self._running() and kafka_probe(HOST, self.port)

    def missing_packages(self) -> list[str]:
        missing = []
        if not find_java():
            missing.append("default-jre-headless")  # Java 17 on Debian 12, 21 on 13
        if not self._libs_ready() and not shutil.which("mvn"):
            missing.append("maven")
        return missing

    def _cluster_id(self) -> str:
        """Generated once and kept: the storage is formatted with it."""
        id_file = self.dir / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        meta = self.data / "meta.properties"
        match = re.search(r"^cluster\.id=(\S+)", meta.read_text(), re.M) if meta.exists() else None
        cluster_id = match.group(1) if match else ""
        while not cluster_id or cluster_id.startswith("-"):  # Kafka avoids a leading '-' too
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        id_file.write_text(cluster_id + "\n")
        return cluster_id

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = {
            # single node, combined KRaft broker + controller, static quorum
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data),
            # one broker: every internal topic must live with replication factor 1
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # tests: consumers join at once, topics appear on first use
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "3",
            "auto.create.topics.enable": "true",
        }
        self.props.write_text(
            "# Written by scripts/services on each start; edits are overwritten.\n"
            + "".join(f"{key}={value}\n" for key, value in settings.items())
        )
        (self.dir / "log4j2.xml").write_text(LOG4J2_XML.format(log=self.log_file))

    def _java_cmd(self, java: str, libs: Path, main: list[str], heap: list[str]) -> list[str]:
        return [
            java,
            *heap,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.dir}",
            "-cp",
            f"{libs}/*",
            *main,
        ]

    def _format(self, java: str, libs: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = self._cluster_id()
        log(f"formatting Kafka storage {self.data} (cluster id {cluster_id})")
        run(
            self._java_cmd(
                java,
                libs,
                ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props)],
                ["-Xmx256m"],
            ),
            cwd=self.dir,
        )

    # -- start
    def start(self) -> None:
        """Launch the broker in the background; wait_ready() waits for it, so the
        JVM boots while PostgreSQL and Redis are being started."""
        if self._running():
            log(f"kafka already running (pid {read_pid(self.pidfile)}); waiting for it")
            return
        if tcp_open(HOST, self.port):
            if not wait_until(lambda: kafka_probe(HOST, self.port), 10):
                raise ServiceError(
                    f"port {self.port} is taken by something that is not a ready "
                    "Kafka broker; stop it or set TENIN_KAFKA_PORT"
                )
            log(f"port {self.port} already serves Kafka (untracked); reusing it")
            return
        java = find_java()
        if not java:
            raise ServiceError("no Java 17+ found even after installing")
        libs = self.ensure_libs()
        self._write_config()
        self._format(java, libs)
        log(f"starting kafka {self.version()} on {self.url} (log {self.log_file})")
        with open(self.stdout_file, "ab") as out:
            # Own session and no inherited stdout/stderr: the broker must outlive us
            # and must not keep `$(scripts/services up)` or a log pipe open.
            self.proc = subprocess.Popen(
                self._java_cmd(
                    java, libs, ["kafka.Kafka", str(self.props)], ["-Xmx512m", "-Xms256m"]
                ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{self.proc.pid}\n")

    def wait_ready(self) -> None:
        started = time.monotonic()
        deadline = started + KAFKA_START_TIMEOUT
        while not kafka_probe(HOST, self.port):
            if self.proc is not None and self.proc.poll() is not None:
                self._fail(f"kafka exited with code {self.proc.returncode}")
            if self.proc is None and not self._running() and not tcp_open(HOST, self.port):
                self._fail("kafka is not running")
            if time.monotonic() > deadline:
                self._fail(
                    f"kafka did not answer a metadata request within {KAFKA_START_TIMEOUT:.0f}s"
                )
            time.sleep(0.5)
        log(f"kafka ready after {time.monotonic() - started:.1f}s")

    def _fail(self, why: str) -> None:
        raise ServiceError(
            f"{why}\n--- {self.log_file} (tail) ---\n{tail(self.log_file)}"
            f"\n--- {self.stdout_file} (tail) ---\n{tail(self.stdout_file, 20)}"
        )

    # -- stop / status
    def stop(self) -> bool:
        pid = tracked_pid(self.pidfile, self.marker)
        if pid is None:
            return False
        log(f"stopping kafka (pid {pid})")
        stop_pid(pid, "kafka", 60)
        self.pidfile.unlink(missing_ok=True)
        return True

    def status(self) -> tuple[bool, str]:
        if self._running():
            ready = "ready" if kafka_probe(HOST, self.port) else "starting"
            return (
                True,
                f"running  pid {read_pid(self.pidfile)}  {self.url}  ({ready}, Kafka {self.version()})",
            )
        return False, "stopped"


# --------------------------------------------------------------------------- commands


def all_services() -> list[Postgres | Redis | Kafka]:
    return [Postgres(), Redis(), Kafka()]


def cmd_up() -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/services",
        description="Start/stop the PostgreSQL, Redis and Kafka that tenin's tests use.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command]()
    except ServiceError as exc:
        log(f"ERROR: {exc}")
        return 1
    except subprocess.TimeoutExpired as exc:
        log(f"ERROR: timed out: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
