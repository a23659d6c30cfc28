"""The Kafka broker's jars, resolved once by Maven from scripts/tenin_services/kafka-pom.xml into the cache."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from .config import CACHE_ROOT, KAFKA_POM
from .process import ServiceError, log, run


def version() -> str:
    """The Kafka version the POM asks for (<kafka.version>)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    if not match:
        raise ServiceError(f"no <kafka.version> in {KAFKA_POM}")
    return match.group(1)


def libs_dir() -> Path:
    """Where the jars for the current POM live (or will)."""
    # Keyed by the POM's content: editing the POM resolves a fresh set of jars.
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:10]
    return CACHE_ROOT / "kafka-libs" / f"{version()}-{digest}"


def libs_ready() -> bool:
    """True once a complete set of jars for the current POM is in the cache."""
    return (libs_dir() / ".complete").exists()


def ensure_libs() -> Path:
    """Resolve kafka_2.13 and its runtime deps with Maven into the cache (once)."""
    libs = libs_dir()
    if libs_ready():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError("mvn not found even after installing")
    staging = libs.with_name(libs.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    log(f"resolving Kafka {version()} jars with Maven into {libs} (first run only)")
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
