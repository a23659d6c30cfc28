"""PostgreSQL: an external one from DATABASE_URL, or our own cluster on PG_PORT."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from .config import HOST, IS_ROOT, PG_PORT, STATE
from .install import pg_bindir
from .postgres_cluster import Cluster, chown
from .probes import is_loopback, postgres_probe, tcp_open
from .process import ServiceError, log, run


class Postgres:
    """Our PostgreSQL cluster (role and database `tenin`), run with pg_ctl."""

    name = "postgres"
    env_var = "DATABASE_URL"

    def __init__(self) -> None:
        self.port = PG_PORT
        self.url = f"postgresql+psycopg://tenin:tenin@{HOST}:{self.port}/tenin"
        # STATE/postgres is the cluster's root dir, or a symlink to it (see _prepare_root).
        self.link = STATE / "postgres"

    # -- external reuse
    def external(self) -> str | None:
        """DATABASE_URL (in SQLAlchemy's psycopg form) if it names another, reachable server."""
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
        """The OS user the cluster runs as: `postgres` when we are root, else ourselves."""
        return "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name

    def root(self) -> Path | None:
        """The cluster's root dir, if the state dir has one."""
        return self.link.resolve() if self.link.exists() else None

    def _cluster(self, root: Path) -> Cluster:
        return Cluster(root, self.port, self.os_user)

    def _running(self, root: Path | None) -> bool:
        return root is not None and self._cluster(root).running()

    def ready(self) -> bool:
        """True if our cluster runs, is provisioned and answers."""
        root = self.root()
        return (
            self._running(root)
            and root is not None
            and (root / "provisioned").exists()
            and postgres_probe(HOST, self.port)
        )

    # -- install
    def missing_packages(self) -> list[str]:
        """`postgresql` unless its binaries are here."""
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
            chown(self.link, self.os_user)
            return self.link.resolve()
        key = hashlib.sha256(str(STATE).encode()).hexdigest()[:12]
        parent = Path("/var/lib/tenin-services")
        root = parent / key
        if root.exists():
            self._cluster(root).stop()
            shutil.rmtree(root)
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o755)  # the postgres user must be able to enter it
        root.mkdir()
        chown(root, self.os_user)
        self.link.symlink_to(root)
        log(
            f"{self.os_user} cannot enter {STATE}; cluster lives in {root} (linked from {self.link})"
        )
        return root

    # -- start
    def start(self) -> None:
        """Create, configure, start and provision the cluster (or adopt one on our port)."""
        bindir = pg_bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL binaries not found even after installing")
        self._ensure_os_user()
        cluster = self._cluster(self._prepare_root())
        if not (cluster.data / "PG_VERSION").exists():
            cluster.initdb(bindir)
        cluster.write_conf()
        if cluster.running():
            log(f"postgres already running (pid {cluster.postmaster_pid()})")
        elif tcp_open(HOST, self.port):
            self._adopt_or_fail(bindir)
            return
        else:
            cluster.start(bindir)
        cluster.provision(bindir)

    def wait_ready(self) -> None:
        """Nothing to wait for."""
        # start() returns only once the cluster accepts connections

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
    def stop(self) -> bool:
        """Stop our cluster; True if it was running."""
        root = self.root()
        if not self._running(root):
            return False
        assert root is not None
        self._cluster(root).stop()
        return True

    def status(self) -> tuple[bool, str]:
        """Whether our cluster runs, with its pid, URL and data dir."""
        root = self.root()
        if self._running(root):
            assert root is not None
            cluster = self._cluster(root)
            return (
                True,
                f"running  pid {cluster.postmaster_pid()}  {self.url}  (data {cluster.data})",
            )
        return False, "stopped"
