"""Where things live and which ports they use, read once from the environment.

Standard library only and no imports from this package, so a test can load this file
on its own (tests/unit/test_docker_compose.py checks the ports against docker-compose).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
KAFKA_POM = REPO / "scripts" / "tenin_services" / "kafka-pom.xml"

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
# The broker's JIT: C1 only (docs/benchmarks.md § Kafka's JIT). With the JVM's default C2
# tier a fresh broker kept compiling through its first benches, up to two thirds of its CPU
# on the 2 cores the services under test share with it; with C1 alone its CPU per decision
# halved on a fresh broker and was no higher than C2's on a warmed one. A long-lived
# production broker on its own machine wants C2: set TENIN_KAFKA_JVM_OPTS empty.
KAFKA_JVM_OPTS = os.environ.get("TENIN_KAFKA_JVM_OPTS", "-XX:TieredStopAtLevel=1").split()

IS_ROOT = os.geteuid() == 0
