"""One PostgreSQL cluster on disk: initdb, its settings, pg_ctl start/stop, provisioning."""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import HOST, IS_ROOT
from .install import pg_bindir
from .process import ServiceError, log, pid_alive, read_pid, run, tail


def chown(path: Path, os_user: str) -> None:
    """Give `path` to the user the cluster runs as (only needed, and possible, as root)."""
    if IS_ROOT:
        entry = pwd.getpwnam(os_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class Cluster:
    """The cluster whose root dir is `root` (data/, run/, postgresql.log, provisioned),
    listening on HOST:`port` and run as `os_user`."""

    root: Path
    port: int
    os_user: str

    @property
    def data(self) -> Path:
        """The data directory (PGDATA)."""
        return self.root / "data"

    def postmaster_pid(self) -> int | None:
        """The pid recorded in postmaster.pid, live or not."""
        return read_pid(self.data / "postmaster.pid")

    def running(self) -> bool:
        """True if this cluster's postmaster is alive."""
        return pid_alive(self.postmaster_pid(), str(self.data))

    def socket_dir(self) -> Path:
        """Where the Unix socket goes."""
        # Unix socket paths are limited to ~107 bytes.
        run_dir = self.root / "run"
        return run_dir if len(str(run_dir)) < 90 else Path("/tmp")

    def initdb(self, bindir: Path) -> None:
        """Create the data directory (replacing a half-done one)."""
        data = self.data
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
            cwd=self.root,
            capture=True,
        )
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\n# tenin test settings, rewritten by scripts/services on each start\n")
            fh.write("include_if_exists = 'tenin.conf'\n")

    def write_conf(self) -> None:
        """(Re)write tenin.conf: address, port, socket dir and test-speed settings."""
        socket_dir = self.socket_dir()
        if socket_dir != Path("/tmp"):
            socket_dir.mkdir(exist_ok=True)
            chown(socket_dir, self.os_user)
        conf = self.data / "tenin.conf"
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
        chown(conf, self.os_user)

    def start(self, bindir: Path) -> None:
        """pg_ctl start, waiting until it accepts connections."""
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # stale (checked by running()): would make pg_ctl refuse
            pidfile.unlink()
        log(f"starting postgres on {HOST}:{self.port} (log {self.root / 'postgresql.log'})")
        proc = run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "postgresql.log"),
            ],
            user=self.os_user,
            cwd=self.root,
            check=False,
        )
        if proc.returncode != 0:
            raise ServiceError(
                f"postgres did not start; log tail:\n{tail(self.root / 'postgresql.log')}"
            )

    def psql(self, bindir: Path, sql: str) -> str:
        """Run `sql` as the postgres superuser over the Unix socket; return its output."""
        cmd = [
            str(bindir / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir()),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ]
        return run(cmd, user=self.os_user, cwd=self.root, capture=True).stdout.strip()

    def provision(self, bindir: Path) -> None:
        """Role `tenin` (superuser: tests create schemas) and database `tenin`."""
        self.psql(
            bindir,
            """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenin') THEN
                CREATE ROLE tenin LOGIN SUPERUSER PASSWORD 'tenin';
              END IF;
            END $$;""",
        )
        if not self.psql(bindir, "SELECT 1 FROM pg_database WHERE datname = 'tenin'"):
            self.psql(bindir, "CREATE DATABASE tenin OWNER tenin")
        (self.root / "provisioned").touch()

    def stop(self) -> None:
        """pg_ctl stop (fast mode) if the cluster runs."""
        bindir = pg_bindir()
        if self.running() and bindir:
            log(f"stopping postgres (pid {self.postmaster_pid()})")
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
                    str(self.data),
                ],
                user=self.os_user,
                cwd=self.root,
                check=False,
            )
