"""docker-compose.yml cannot run here (no Docker engine), so check its shape: the
topology DESIGN.md section 8 describes, wired the way the tenin CLI expects."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"

APP_SERVICES = ("campaign_engine", "chat_agent", "redemption_tracker")
APP_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "MESSAGING_API_BASE",
    "PUBLIC_BASE_URL",
    "TENIN_SECRET_KEY",
    "TENIN_PREVIOUS_SECRET_KEYS",
    "TENIN_PSEUDONYM_KEY",
    "MEMBER_LINK_URL",
    "TENIN_OUTBOX_RELAY",
)
SECRETS = ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "TENIN_SECRET_KEY")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, from "[ip:]host:container" entries."""
    mapping = {}
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        mapping[int(host)] = int(container)
    return mapping


def test_expected_services_exist(services: dict[str, Any]) -> None:
    expected = {"postgres", "redis", "kafka", "migrate"}
    for name in APP_SERVICES:
        expected |= {name, f"{name}_worker", f"{name}_relay"}
    assert set(services) == expected


@pytest.mark.parametrize("name", APP_SERVICES)
def test_relay_containers_run_only_in_their_profile(services: dict[str, Any], name: str) -> None:
    # With TENIN_OUTBOX_RELAY=process the workers publish nothing (docs/scaling.md).
    relay = services[f"{name}_relay"]
    assert command_of(relay) == ["tenin", "relay", name]
    assert relay["profiles"] == ["relay-processes"]
    assert env_of(relay)["TENIN_OUTBOX_RELAY"] == "${TENIN_OUTBOX_RELAY:-thread}"


def test_infrastructure_images(services: dict[str, Any]) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    image, _, tag = services["kafka"]["image"].partition(":")
    assert image == "apache/kafka"
    assert re.fullmatch(r"4\.\d+\.\d+", tag), f"Kafka 4.x tag expected, got {tag!r}"


def test_postgres_matches_the_app_database_url(services: dict[str, Any]) -> None:
    env = env_of(services["postgres"])
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == ("tenin",) * 3
    url = env_of(services["campaign_engine"])["DATABASE_URL"]
    assert url == "postgresql+psycopg://tenin:tenin@postgres:5432/tenin"


def test_kafka_is_a_single_node_kraft_cluster(services: dict[str, Any]) -> None:
    env = env_of(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
    # Every listener has a security protocol and the controller listener is one of them.
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = [item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")]
    assert set(listeners) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners


@pytest.mark.parametrize("name", ["postgres", "redis", "kafka"])
def test_infrastructure_has_healthchecks(services: dict[str, Any], name: str) -> None:
    assert services[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_has_serve_and_worker_containers(services: dict[str, Any], name: str) -> None:
    serve, worker = services[name], services[f"{name}_worker"]
    serve_cmd = command_of(serve)
    assert serve_cmd[:3] == ["tenin", "serve", name]
    # Reachable from outside the container: bound to all interfaces, port published.
    assert serve_cmd[serve_cmd.index("--host") + 1] == "0.0.0.0"
    port = int(serve_cmd[serve_cmd.index("--port") + 1])
    assert port in container_ports(serve).values()
    assert command_of(worker) == ["tenin", "worker", name]
    for container in (serve, worker):
        assert container["build"] == "."
        assert container["image"] == "tenin:latest"


@pytest.mark.parametrize(
    "name",
    [
        *APP_SERVICES,
        *(f"{name}_{kind}" for name in APP_SERVICES for kind in ("worker", "relay")),
        "migrate",
    ],
)
def test_tenin_containers_get_the_full_environment(services: dict[str, Any], name: str) -> None:
    env = env_of(services[name])
    assert set(APP_ENV) <= set(env)
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # Secrets come from the operator, with no baked-in default.
    for key in SECRETS:
        assert env[key].startswith(f"${{{key}:?"), f"{key} must be required, got {env[key]!r}"


def test_migrate_runs_once_before_the_apps(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert command_of(migrate) == ["tenin", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        for container in (name, f"{name}_worker"):
            depends = services[container]["depends_on"]
            assert depends["migrate"]["condition"] == "service_completed_successfully"
            assert depends["kafka"]["condition"] == "service_healthy"


def test_dependencies_and_volumes_exist(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def test_only_known_variables_are_interpolated() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    assert used == set(APP_ENV) - {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"}


def test_host_ports_match_scripts_services(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same URLs work against `scripts/services up` and against the containers, whose
    broker runs as the script's does."""
    for var in (
        "TENIN_POSTGRES_PORT",
        "TENIN_REDIS_PORT",
        "TENIN_KAFKA_PORT",
        "TENIN_KAFKA_JVM_OPTS",
    ):
        monkeypatch.delenv(var, raising=False)
    spec = importlib.util.spec_from_file_location(
        "tenin_services_config", REPO / "scripts" / "tenin_services" / "config.py"
    )
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert container_ports(services["postgres"]) == {script.PG_PORT: 5432}
    assert container_ports(services["redis"]) == {script.REDIS_PORT: 6379}
    kafka_env = env_of(services["kafka"])
    assert f"HOST://127.0.0.1:{script.KAFKA_PORT}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert script.KAFKA_PORT in container_ports(services["kafka"])
    # The broker runs with the JVM options scripts/services gives its own (its JIT).
    assert kafka_env["KAFKA_OPTS"].split() == script.KAFKA_JVM_OPTS
    # Infrastructure ports are published on loopback only.
    for name in ("postgres", "redis", "kafka"):
        assert all(str(entry).startswith("127.0.0.1:") for entry in services[name]["ports"])


def test_dockerfile_builds_the_app_image() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN .*pip install\b.*\.", text, re.M)
    for path in ("shared", "services", "tenin", "migrations", "alembic.ini", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), (
            f"Dockerfile does not copy {path}"
        )
