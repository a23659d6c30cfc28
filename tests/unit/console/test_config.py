"""The console's configuration and its refusal to start without the APIs' URLs."""

from __future__ import annotations

import pytest

from services.console.config import ConsoleConfig
from shared.config import ConfigError
from tenin.cli import main

URLS = {
    "TENIN_CAMPAIGN_ENGINE_URL": "http://127.0.0.1:8001/",
    "TENIN_REDEMPTION_TRACKER_URL": "http://127.0.0.1:8003",
}


def test_the_environment_becomes_one_frozen_config() -> None:
    config = ConsoleConfig.from_env(
        {
            **URLS,
            "TENIN_CONSOLE_IDLE_MINUTES": "5",
            "TENIN_CONSOLE_POLL_SECONDS": "1",
            "TENIN_RATE_LIMIT_CONSOLE_SIGN_IN": "1/3",
            "PUBLIC_BASE_URL": "https://console.example",
        }
    )
    assert config.campaign_engine_url == "http://127.0.0.1:8001"
    assert (config.idle_seconds, config.poll_seconds) == (300, 1)
    assert (config.sign_in_rate_per_s, config.sign_in_burst) == (1.0, 3)
    assert config.https and config.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, "TENIN_CAMPAIGN_ENGINE_URL"),
        ({**URLS, "TENIN_RETAILER_TIMEZONE": "Mars/Olympus"}, "TENIN_RETAILER_TIMEZONE"),
        ({**URLS, "TENIN_CONSOLE_IDLE_MINUTES": "-1"}, "IDLE_MINUTES"),
        ({**URLS, "TENIN_RATE_LIMIT_CONSOLE_SIGN_IN": "fast"}, "CONSOLE_SIGN_IN"),
    ],
)
def test_an_unusable_environment_is_refused_by_name(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        ConsoleConfig.from_env(extra)


def test_tenin_serve_console_refuses_to_start_without_the_api_urls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in URLS:
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "console", "--port", "1"]) == 2
    assert "TENIN_CAMPAIGN_ENGINE_URL" in capsys.readouterr().err
