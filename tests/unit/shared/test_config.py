"""Settings come from the environment, once, typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, Settings


def test_embedded_default_when_no_urls(tmp_path: Path) -> None:
    s = Settings.from_env({"TENIN_DATA_DIR": str(tmp_path)})
    assert s.embedded
    assert s.effective_database_url == f"sqlite:///{tmp_path}/tenin.db"


def test_real_services_from_env() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://u:p@h/db",
            "REDIS_URL": "redis://h:1/0",
            "KAFKA_BOOTSTRAP_SERVERS": "h:9092",
            "MESSAGING_API_BASE": "http://127.0.0.1:9/",
            "TENIN_BROKER_FLAVOR": "tansu",
        }
    )
    assert not s.embedded
    assert s.effective_database_url == "postgresql+psycopg://u:p@h/db"
    assert s.messaging_api_base == "http://127.0.0.1:9"
    assert s.broker_flavor == "tansu"


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigError, match="TENIN_BROKER_FLAVOR"):
        Settings.from_env({"TENIN_BROKER_FLAVOR": "rabbit"})
    with pytest.raises(ConfigError, match="TENIN_MAX_REQUEST_BYTES"):
        Settings.from_env({"TENIN_MAX_REQUEST_BYTES": "lots"})


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = Settings.from_env({"TENIN_DATA_DIR": str(tmp_path)})
    with pytest.raises(AttributeError):
        s.secret_key = "x"  # type: ignore[misc]


def test_campaigns_end_by_themselves_30_days_past_their_window_unless_told_not_to() -> None:
    assert Settings.from_env({}).campaign_auto_end_days == 30.0
    assert Settings.from_env({"TENIN_CAMPAIGN_AUTO_END_DAYS": "7"}).campaign_auto_end_days == 7.0
    assert Settings.from_env({"TENIN_CAMPAIGN_AUTO_END_DAYS": "0"}).campaign_auto_end_days is None
