"""One typed, frozen configuration object per process, built from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "propensity"
DEFAULT_UPLIFT_DIR = REPO_ROOT / "models" / "uplift"
DEFAULT_SECRET = "tenin-dev-secret-change-me"


class ConfigError(ValueError):
    """Raised when the environment holds a value tenin cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a tenin process needs to know about its surroundings."""

    service: str = "tenin"
    database_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    broker_flavor: str = "kafka"
    topic_namespace: str = ""
    line_channel_secret: str = "dev-channel-secret"
    line_channel_access_token: str = "dev-channel-token"
    messaging_api_base: str = "https://api.line.me"
    public_base_url: str = "http://127.0.0.1:8002"
    secret_key: str = DEFAULT_SECRET
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".tenin")
    model_dir: Path = DEFAULT_MODEL_DIR
    log_level: str = "INFO"
    log_json: bool = True
    max_request_bytes: int = 2 * 1024 * 1024
    consumer_max_attempts: int = 3
    relay_poll_seconds: float = 0.05
    # campaign_engine: share of offer decisions spent exploring (0 = always the best action).
    policy_epsilon: float = 0.05
    policy_uplift: bool = False

    @property
    def embedded(self) -> bool:
        """True when no external service URL was given: the laptop/demo default."""
        return not (self.database_url or self.redis_url or self.kafka_bootstrap_servers)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tenin.db'}"

    def with_service(self, service: str) -> Settings:
        """A copy of these settings labelled for one service."""
        return replace(self, service=service)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, service: str = "tenin") -> Settings:
        """Build settings from environment variables (docs/interfaces.md § Operator interface)."""
        env = os.environ if env is None else env

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            raw = opt(name)
            if raw is None:
                return default
            try:
                return float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from exc

        defaults = cls()
        return cls(
            service=service,
            database_url=opt("DATABASE_URL"),
            redis_url=opt("REDIS_URL"),
            kafka_bootstrap_servers=opt("KAFKA_BOOTSTRAP_SERVERS"),
            broker_flavor=_broker_flavor(opt("TENIN_BROKER_FLAVOR")),
            topic_namespace=opt("TENIN_TOPIC_NAMESPACE") or "",
            line_channel_secret=opt("LINE_CHANNEL_SECRET") or defaults.line_channel_secret,
            line_channel_access_token=opt("LINE_CHANNEL_ACCESS_TOKEN")
            or defaults.line_channel_access_token,
            messaging_api_base=(opt("MESSAGING_API_BASE") or defaults.messaging_api_base).rstrip(
                "/"
            ),
            public_base_url=(opt("PUBLIC_BASE_URL") or defaults.public_base_url).rstrip("/"),
            secret_key=opt("TENIN_SECRET_KEY") or defaults.secret_key,
            data_dir=Path(opt("TENIN_DATA_DIR") or defaults.data_dir),
            model_dir=Path(opt("TENIN_MODEL_DIR") or defaults.model_dir),
            log_level=(opt("TENIN_LOG_LEVEL") or "INFO").upper(),
            log_json=(opt("TENIN_LOG_FORMAT") or "json") == "json",
            max_request_bytes=int(number("TENIN_MAX_REQUEST_BYTES", defaults.max_request_bytes)),
            consumer_max_attempts=int(
                number("TENIN_CONSUMER_MAX_ATTEMPTS", defaults.consumer_max_attempts)
            ),
            relay_poll_seconds=number("TENIN_RELAY_POLL_SECONDS", defaults.relay_poll_seconds),
            policy_epsilon=number("TENIN_POLICY_EPSILON", defaults.policy_epsilon),
            policy_uplift=(opt("TENIN_POLICY") or "propensity") == "uplift",
        )


def _broker_flavor(raw: str | None) -> str:
    flavor = (raw or "kafka").lower()
    if flavor not in ("kafka", "tansu"):
        raise ConfigError(f"TENIN_BROKER_FLAVOR must be kafka or tansu, got {raw!r}")
    return flavor
