"""The console's configuration: one frozen object built from the environment at start-up
(docs/console.md, docs/interfaces.md § Marketer console)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.config import ConfigError, Settings

DEFAULT_TIMEZONE = "Asia/Tokyo"
# Failed sign-ins per client IP: 5 at once, then one every 5 seconds.
DEFAULT_SIGN_IN_LIMIT = (0.2, 5)


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the APIs are, how sessions behave and how pages are shown."""

    campaign_engine_url: str
    redemption_tracker_url: str
    secret_key: str
    redis_url: str | None = None
    namespace: str = "tenin"
    idle_seconds: float = 30 * 60
    poll_seconds: int = 5
    trust_proxy: bool = False
    https: bool = False  # PUBLIC_BASE_URL is https: cookies are always Secure
    timezone: str = DEFAULT_TIMEZONE
    api_timeout_s: float = 10.0
    sign_in_rate_per_s: float = DEFAULT_SIGN_IN_LIMIT[0]
    sign_in_burst: int = DEFAULT_SIGN_IN_LIMIT[1]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleConfig:
        """Read TENIN_* variables (docs/console.md § Running it); ConfigError when unusable."""
        env = os.environ if env is None else env
        settings = Settings.from_env(env, service="console")

        def opt(name: str) -> str:
            return env.get(name, "").strip()

        engine, tracker = opt("TENIN_CAMPAIGN_ENGINE_URL"), opt("TENIN_REDEMPTION_TRACKER_URL")
        if not engine or not tracker:
            raise ConfigError(
                "the console needs TENIN_CAMPAIGN_ENGINE_URL and TENIN_REDEMPTION_TRACKER_URL"
            )
        timezone = opt("TENIN_RETAILER_TIMEZONE") or DEFAULT_TIMEZONE
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"TENIN_RETAILER_TIMEZONE: unknown time zone {timezone!r}") from exc
        rate, burst = _limit(opt("TENIN_RATE_LIMIT_CONSOLE_SIGN_IN"))
        return cls(
            campaign_engine_url=engine.rstrip("/"),
            redemption_tracker_url=tracker.rstrip("/"),
            secret_key=settings.secret_key,
            redis_url=settings.redis_url,
            namespace=settings.topic_namespace or "tenin",
            idle_seconds=_number(opt("TENIN_CONSOLE_IDLE_MINUTES"), 30.0, "IDLE_MINUTES") * 60,
            poll_seconds=int(_number(opt("TENIN_CONSOLE_POLL_SECONDS"), 5, "POLL_SECONDS")),
            trust_proxy=opt("TENIN_CONSOLE_TRUST_PROXY") in ("1", "true", "yes"),
            https=settings.public_base_url.startswith("https://"),
            timezone=timezone,
            sign_in_rate_per_s=rate,
            sign_in_burst=burst,
        )


def _number(raw: str, default: float, name: str) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"TENIN_CONSOLE_{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"TENIN_CONSOLE_{name} must be above 0, got {raw!r}")
    return value


def _limit(raw: str) -> tuple[float, int]:
    if not raw:
        return DEFAULT_SIGN_IN_LIMIT
    try:
        rate, burst = raw.split("/")
        return float(rate), int(burst)
    except ValueError as exc:
        raise ConfigError(
            f"TENIN_RATE_LIMIT_CONSOLE_SIGN_IN must be <rate per second>/<burst>, got {raw!r}"
        ) from exc
