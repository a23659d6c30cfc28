"""One typed, frozen configuration object per process, built from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared import secret_keys

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "propensity"
DEFAULT_UPLIFT_DIR = REPO_ROOT / "models" / "uplift"


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
    # Secrets default to fresh random values, never to anything published; from_env
    # reads them (docs/architecture.md § Secrets and key rotation).
    line_channel_secret: str = field(default_factory=lambda: _random(secret_keys.CHANNEL_SECRET))
    line_channel_access_token: str = field(
        default_factory=lambda: _random(secret_keys.CHANNEL_ACCESS_TOKEN)
    )
    messaging_api_base: str = "https://api.line.me"
    public_base_url: str = "http://127.0.0.1:8002"
    # The retailer's member site, where a customer signs in to link a card (account link).
    member_link_url: str = "http://127.0.0.1:8002/member-link"
    # A re-follow within this many days of a follow that asked for an offer asks for none.
    refollow_offer_days: float = 30.0
    secret_key: str = field(default_factory=lambda: _random(secret_keys.SECRET_KEY))
    # Keys that signed codes and hashed API keys before a rotation: they verify, never sign.
    previous_secret_keys: tuple[str, ...] = ()
    # The key of stable ids (customer pseudonyms, member hashes, the holdout hash); empty
    # means TENIN_SECRET_KEY. It must outlive rotations, or every customer id would change.
    pseudonym_secret_key: str = ""
    # Required secrets the environment did not give (outside the embedded default).
    unset_secrets: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".tenin")
    model_dir: Path = DEFAULT_MODEL_DIR
    uplift_dir: Path = DEFAULT_UPLIFT_DIR
    # `tenin model prune-logs` deletes decision-log rows older than this (None: keep all).
    decision_log_retention_days: float | None = None
    # Outbox rows sent longer ago than this are deleted by the relay (None: keep all;
    # shared/retention.py).
    outbox_retention_days: float | None = 7.0
    # Processed-event records older than this are deleted by the relay (None: keep all). It
    # must outlast the longest a record stays on a consumed topic (retention.ms + segment.ms:
    # 14 days by Kafka's defaults; shared/retention.outlasts_topics).
    processed_events_retention_days: float | None = 15.0
    # chat_agent's sent, failed and cancelled deliveries older than this are deleted by its
    # relay (None: keep all): they hold LINE user ids and message texts.
    delivery_retention_days: float | None = 30.0
    # chat_agent's offer requests older than this are deleted by its relay (None: keep all).
    # The thank-you for a redeemed coupon reads its request, so it must outlast the longest
    # coupon validity (90 days) and a till's lateness (72 hours).
    offer_request_retention_days: float | None = 100.0
    # redemption_tracker's copies of decisions and deliveries older than this are deleted
    # by its relay once their campaign's report is final (None: keep all). A report is
    # final 3 to 4 months after its campaign's end, so this keeps a campaign's copies some
    # weeks to months past its freeze.
    tracker_copy_retention_days: float | None = 180.0
    # campaign_engine: an active or paused campaign whose window closed this many days ago
    # is ended by the engine, so its report can become final and what it left be pruned
    # (None: only a marketer ends a campaign). No coupon is valid past its campaign's end.
    campaign_auto_end_days: float | None = 30.0
    log_level: str = "INFO"
    log_json: bool = True
    max_request_bytes: int = 2 * 1024 * 1024
    consumer_max_attempts: int = 3
    # The outbox relay is woken on commit; this is only its fallback poll
    # (docs/architecture.md § Hot paths).
    relay_poll_seconds: float = 1.0
    # Where a service's outbox relay runs: "thread", in each worker process (whose loops
    # also publish their own commits eagerly), or "process": `tenin relay <service>`
    # processes of their own, woken by NOTIFY; PostgreSQL only (docs/scaling.md).
    outbox_relay: str = "thread"
    # Partitions of the customer-keyed topics: at most this many processes of one
    # consumer group share a topic (docs/scaling.md).
    topic_partitions: int = 12
    # campaign_engine: decision consumers (threads) per worker process. More than one
    # pays only when the database or Redis is far away (docs/architecture.md § Decisions).
    decision_threads: int = 1
    # chat_agent: pushes per second the messaging channel takes (campaign drops).
    line_push_rate_per_s: float = 2000.0
    # campaign_engine: share of offer decisions spent exploring (0 = always the best action).
    policy_epsilon: float = 0.05
    policy_uplift: bool = False
    # campaign_engine: share of a paced budget allowed ahead of the even line (the same
    # default as budget/pacing.py DEFAULT_PACING_SLACK; docs/architecture.md § Budget pacing).
    pacing_slack: float = 0.05

    @property
    def embedded(self) -> bool:
        """True when no external service URL was given: the laptop/demo default."""
        return not (self.database_url or self.redis_url or self.kafka_bootstrap_servers)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """TENIN_SECRET_KEY, then the keys it replaced: all verify, only the first signs."""
        return (self.secret_key, *self.previous_secret_keys)

    @property
    def pseudonym_key(self) -> str:
        """The key stable ids derive from: TENIN_PSEUDONYM_KEY, else TENIN_SECRET_KEY."""
        return self.pseudonym_secret_key or self.secret_key

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

        def days_or_off(name: str, default: float | None) -> float | None:
            """A number of days where 0 (or unset with no default) means never."""
            return number(name, default or 0.0) or None

        defaults = cls()
        data_dir = Path(opt("TENIN_DATA_DIR") or defaults.data_dir)
        external = opt("DATABASE_URL") or opt("REDIS_URL") or opt("KAFKA_BOOTSTRAP_SERVERS")
        given = {name: opt(name) for name in secret_keys.REQUIRED}
        chosen = _choose_secrets(given, embedded=not external, data_dir=data_dir)
        return cls(
            service=service,
            database_url=opt("DATABASE_URL"),
            redis_url=opt("REDIS_URL"),
            kafka_bootstrap_servers=opt("KAFKA_BOOTSTRAP_SERVERS"),
            broker_flavor=_broker_flavor(opt("TENIN_BROKER_FLAVOR")),
            topic_namespace=opt("TENIN_TOPIC_NAMESPACE") or "",
            line_channel_secret=chosen[secret_keys.CHANNEL_SECRET],
            line_channel_access_token=chosen[secret_keys.CHANNEL_ACCESS_TOKEN],
            messaging_api_base=(opt("MESSAGING_API_BASE") or defaults.messaging_api_base).rstrip(
                "/"
            ),
            public_base_url=(opt("PUBLIC_BASE_URL") or defaults.public_base_url).rstrip("/"),
            member_link_url=opt("MEMBER_LINK_URL") or defaults.member_link_url,
            refollow_offer_days=number("TENIN_REFOLLOW_OFFER_DAYS", defaults.refollow_offer_days),
            secret_key=chosen[secret_keys.SECRET_KEY],
            previous_secret_keys=tuple(
                k.strip()
                for k in (opt(secret_keys.PREVIOUS_SECRET_KEYS) or "").split(",")
                if k.strip()
            ),
            pseudonym_secret_key=opt(secret_keys.PSEUDONYM_KEY) or "",
            unset_secrets=tuple(name for name, value in given.items() if not value and external),
            data_dir=data_dir,
            model_dir=Path(opt("TENIN_MODEL_DIR") or defaults.model_dir),
            uplift_dir=Path(opt("TENIN_UPLIFT_DIR") or defaults.uplift_dir),
            decision_log_retention_days=days_or_off("TENIN_DECISION_LOG_RETENTION_DAYS", None),
            outbox_retention_days=days_or_off(
                "TENIN_OUTBOX_RETENTION_DAYS", defaults.outbox_retention_days
            ),
            processed_events_retention_days=days_or_off(
                "TENIN_PROCESSED_EVENTS_RETENTION_DAYS", defaults.processed_events_retention_days
            ),
            delivery_retention_days=days_or_off(
                "TENIN_DELIVERY_RETENTION_DAYS", defaults.delivery_retention_days
            ),
            offer_request_retention_days=days_or_off(
                "TENIN_OFFER_REQUEST_RETENTION_DAYS", defaults.offer_request_retention_days
            ),
            tracker_copy_retention_days=days_or_off(
                "TENIN_TRACKER_COPY_RETENTION_DAYS", defaults.tracker_copy_retention_days
            ),
            campaign_auto_end_days=days_or_off(
                "TENIN_CAMPAIGN_AUTO_END_DAYS", defaults.campaign_auto_end_days
            ),
            log_level=(opt("TENIN_LOG_LEVEL") or "INFO").upper(),
            log_json=(opt("TENIN_LOG_FORMAT") or "json") == "json",
            max_request_bytes=int(number("TENIN_MAX_REQUEST_BYTES", defaults.max_request_bytes)),
            consumer_max_attempts=int(
                number("TENIN_CONSUMER_MAX_ATTEMPTS", defaults.consumer_max_attempts)
            ),
            relay_poll_seconds=number("TENIN_RELAY_POLL_SECONDS", defaults.relay_poll_seconds),
            outbox_relay=_outbox_relay(opt("TENIN_OUTBOX_RELAY"), opt("DATABASE_URL")),
            topic_partitions=_positive_int(
                "TENIN_TOPIC_PARTITIONS", number("TENIN_TOPIC_PARTITIONS", 12)
            ),
            decision_threads=_positive_int(
                "TENIN_DECISION_THREADS",
                number("TENIN_DECISION_THREADS", defaults.decision_threads),
            ),
            line_push_rate_per_s=number("LINE_PUSH_RATE_PER_S", defaults.line_push_rate_per_s),
            policy_epsilon=number("TENIN_POLICY_EPSILON", defaults.policy_epsilon),
            policy_uplift=(opt("TENIN_POLICY") or "propensity") == "uplift",
            pacing_slack=number("TENIN_PACING_SLACK", defaults.pacing_slack),
        )


def _random(name: str) -> str:
    return secret_keys.fresh_secrets()[name]


def _choose_secrets(
    given: Mapping[str, str | None], *, embedded: bool, data_dir: Path
) -> dict[str, str]:
    """The required secrets: as given; else the data directory's own in the embedded
    default; else fresh random values (never a published one) that `require_secrets`
    reports as unset."""
    if all(given.values()):
        return {name: str(value) for name, value in given.items()}
    fallback = secret_keys.embedded_secrets(data_dir) if embedded else secret_keys.fresh_secrets()
    return {name: given[name] or fallback[name] for name in secret_keys.REQUIRED}


def require_secrets(settings: Settings, names: Iterable[str] = secret_keys.REQUIRED) -> Settings:
    """`settings` when its secrets are fit to serve with; raise ConfigError naming each bad one.

    The embedded default passes (its secrets are random per data directory). Elsewhere a
    secret among `names` must be set, unpublished and long enough; so must every
    TENIN_PREVIOUS_SECRET_KEYS entry and TENIN_PSEUDONYM_KEY, which must be set once
    previous keys are (docs/architecture.md § Secrets and key rotation).
    """
    if settings.embedded:
        return settings
    wanted = set(names)
    given = {
        secret_keys.SECRET_KEY: settings.secret_key,
        secret_keys.CHANNEL_SECRET: settings.line_channel_secret,
        secret_keys.CHANNEL_ACCESS_TOKEN: settings.line_channel_access_token,
    }
    checks = [
        (name, "" if name in settings.unset_secrets else value)
        for name, value in given.items()
        if name in wanted
    ]
    found = []
    if secret_keys.SECRET_KEY in wanted:
        previous = secret_keys.PREVIOUS_SECRET_KEYS
        checks += [
            (f"{previous} entry {i}", k) for i, k in enumerate(settings.previous_secret_keys, 1)
        ]
        if settings.pseudonym_secret_key:
            checks.append((secret_keys.PSEUDONYM_KEY, settings.pseudonym_secret_key))
        elif settings.previous_secret_keys:
            found.append(
                f"{secret_keys.PSEUDONYM_KEY} is not set while {previous} is: set it to the key "
                "customer ids were first derived with (the oldest), or every customer id changes"
            )
    found += [p for name, value in checks if (p := secret_keys.secret_problem(name, value))]
    if found:
        raise ConfigError(
            f"refusing to start {settings.service}: {'; '.join(found)}. A fresh secret: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return settings


def _positive_int(name: str, value: float) -> int:
    if value != int(value) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def _outbox_relay(raw: str | None, database_url: str | None) -> str:
    place = (raw or "thread").lower()
    if place not in ("thread", "process"):
        raise ConfigError(f"TENIN_OUTBOX_RELAY must be thread or process, got {raw!r}")
    if place == "process" and not (database_url or "").startswith("postgresql"):
        raise ConfigError(
            "TENIN_OUTBOX_RELAY=process needs a PostgreSQL DATABASE_URL: a relay process is "
            "woken by NOTIFY, which SQLite does not have"
        )
    return place


def _broker_flavor(raw: str | None) -> str:
    flavor = (raw or "kafka").lower()
    if flavor not in ("kafka", "tansu"):
        raise ConfigError(f"TENIN_BROKER_FLAVOR must be kafka or tansu, got {raw!r}")
    return flavor
