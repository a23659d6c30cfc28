"""Apache Kafka: external brokers from KAFKA_BOOTSTRAP_SERVERS, or our own single-node
KRaft broker (combined broker + controller) on KAFKA_PORT, run straight from its jars.

(Named kafka_broker, not kafka, so that it can never be mistaken for the kafka client
package the app uses.)
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import NoReturn

from . import kafka_jars
from .config import (
    HOST,
    KAFKA_CONTROLLER_PORT,
    KAFKA_JVM_OPTS,
    KAFKA_PORT,
    KAFKA_START_TIMEOUT,
    STATE,
)
from .install import find_java
from .probes import is_loopback, kafka_probe, tcp_open
from .process import ServiceError, log, read_pid, run, tail, wait_until
from .service import PidfileServer

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


class Kafka(PidfileServer):
    """Our Kafka broker: a background JVM tracked through its pid file."""

    name = "kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"
    stop_timeout = 60

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
        """KAFKA_BOOTSTRAP_SERVERS if one of its brokers (not ours) answers."""
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

    # -- state
    def ready(self) -> bool:
        """True if our broker runs and serves metadata."""
        return self._running() and kafka_probe(HOST, self.port)

    def missing_packages(self) -> list[str]:
        """A Java 17+ runtime, and Maven while the jars are not resolved yet."""
        missing = []
        if not find_java():
            missing.append("default-jre-headless")  # Java 17 on Debian 12, 21 on 13
        if not kafka_jars.libs_ready() and not shutil.which("mvn"):
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
        libs = kafka_jars.ensure_libs()
        self._write_config()
        self._format(java, libs)
        log(f"starting kafka {kafka_jars.version()} on {self.url} (log {self.log_file})")
        with open(self.stdout_file, "ab") as out:
            # Own session and no inherited stdout/stderr: the broker must outlive us
            # and must not keep `$(scripts/services up)` or a log pipe open. A 1 GiB heap:
            # every test run makes its own namespaced topics (12 partitions for the
            # customer-keyed ones), and 512 MiB ran out of heap at ~13,600 partitions.
            # Its JIT: config.KAFKA_JVM_OPTS (C1 only, unless TENIN_KAFKA_JVM_OPTS says).
            self.proc = subprocess.Popen(
                self._java_cmd(
                    java,
                    libs,
                    ["kafka.Kafka", str(self.props)],
                    ["-Xmx1g", "-Xms256m", *KAFKA_JVM_OPTS],
                ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{self.proc.pid}\n")

    def wait_ready(self) -> None:
        """Wait until the broker answers a metadata request; fail with its log tail."""
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

    def _fail(self, why: str) -> NoReturn:
        raise ServiceError(
            f"{why}\n--- {self.log_file} (tail) ---\n{tail(self.log_file)}"
            f"\n--- {self.stdout_file} (tail) ---\n{tail(self.stdout_file, 20)}"
        )

    # -- status
    def status(self) -> tuple[bool, str]:
        """Whether our broker runs, with its pid, address, readiness and version."""
        if self._running():
            ready = "ready" if kafka_probe(HOST, self.port) else "starting"
            return (
                True,
                f"running  pid {read_pid(self.pidfile)}  {self.url}  "
                f"({ready}, Kafka {kafka_jars.version()})",
            )
        return False, "stopped"
