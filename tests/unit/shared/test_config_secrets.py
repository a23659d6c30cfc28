"""Secrets outside the embedded default: refused when missing, published or short, named
in the message; random and kept per data directory in the embedded default; rotation
(docs/architecture.md § Secrets and key rotation)."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from shared.config import ConfigError, Settings, require_secrets
from shared.secret_keys import KNOWN_DEFAULTS, fresh_secrets
from tests.support.strong_secrets import UNREACHABLE_SERVICES

REAL = UNREACHABLE_SERVICES
STRONG = fresh_secrets()
# What each variable held in the source before (and values anyone could guess).
PUBLISHED = {
    "TENIN_SECRET_KEY": "tenin-dev-secret-change-me",
    "LINE_CHANNEL_SECRET": "dev-channel-secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "dev-channel-token",
}


def settings(**env: str) -> Settings:
    return Settings.from_env({**REAL, **STRONG, **env})


def refusal(s: Settings) -> str:
    with pytest.raises(ConfigError) as caught:
        require_secrets(s)
    return str(caught.value)


def test_strong_secrets_with_real_services_pass() -> None:
    s = settings()
    assert require_secrets(s) is s
    assert (s.secret_key, s.line_channel_secret) == (
        STRONG["TENIN_SECRET_KEY"],
        STRONG["LINE_CHANNEL_SECRET"],
    )


@pytest.mark.parametrize("name", sorted(STRONG))
def test_a_missing_secret_is_refused_by_name(name: str) -> None:
    env = {**REAL, **STRONG}
    del env[name]
    s = Settings.from_env(env)
    message = refusal(s)
    assert f"{name} is not set" in message
    assert all(other not in message for other in STRONG if other != name)


@pytest.mark.parametrize("name", sorted(STRONG))
def test_an_empty_secret_is_refused_like_a_missing_one(name: str) -> None:
    assert f"{name} is not set" in refusal(settings(**{name: "   "}))


@pytest.mark.parametrize("name", sorted(STRONG))
def test_the_old_source_default_is_refused_by_name(name: str) -> None:
    message = refusal(settings(**{name: PUBLISHED[name]}))
    assert f"{name} is a published default" in message
    assert PUBLISHED[name] not in message  # the message never repeats a secret


@pytest.mark.parametrize("name", sorted(STRONG))
@pytest.mark.parametrize("value", ["CHANGE-ME", "changeme"])
def test_placeholder_values_are_refused(name: str, value: str) -> None:
    assert f"{name} is a published default" in refusal(settings(**{name: value}))


@pytest.mark.parametrize("name", sorted(STRONG))
def test_a_short_secret_is_refused_by_name(name: str) -> None:
    short = secrets.token_hex(16)[:31]  # 31 bytes: one short of the minimum
    assert f"{name} is shorter than 32 bytes" in refusal(settings(**{name: short}))
    assert require_secrets(settings(**{name: secrets.token_hex(16)}))  # 32 bytes pass


def test_a_long_run_of_one_character_is_refused() -> None:
    assert "TENIN_SECRET_KEY repeats fewer than 8" in refusal(settings(TENIN_SECRET_KEY="x" * 64))


def test_every_problem_is_reported_at_once() -> None:
    message = refusal(Settings.from_env({**REAL, **PUBLISHED}))
    assert all(name in message for name in STRONG)


def test_refusal_holds_with_only_one_external_service() -> None:
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert not s.embedded
    assert "TENIN_SECRET_KEY is not set" in refusal(s)


def test_unset_secrets_never_fall_back_to_a_published_value() -> None:
    s = Settings.from_env(REAL)
    used = {s.secret_key, s.line_channel_secret, s.line_channel_access_token}
    assert not used & (KNOWN_DEFAULTS | set(PUBLISHED.values()))
    assert s.unset_secrets == (
        "TENIN_SECRET_KEY",
        "LINE_CHANNEL_SECRET",
        "LINE_CHANNEL_ACCESS_TOKEN",
    )
    built = Settings()  # code that builds Settings itself gets random secrets too
    assert built.secret_key not in KNOWN_DEFAULTS and len(built.secret_key) >= 32
    assert Settings().secret_key != built.secret_key


def test_only_the_secrets_asked_for_are_checked() -> None:
    s = settings(LINE_CHANNEL_SECRET="short")
    assert require_secrets(s, ["TENIN_SECRET_KEY"]) is s
    assert "LINE_CHANNEL_SECRET" in refusal(s)


def test_the_embedded_default_makes_random_secrets_kept_in_its_data_dir(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    first = Settings.from_env({"TENIN_DATA_DIR": str(one)})
    assert first.embedded and require_secrets(first) is first
    assert not {first.secret_key, first.line_channel_secret, first.line_channel_access_token} & (
        KNOWN_DEFAULTS | set(PUBLISHED.values())
    )
    assert len(first.secret_key) >= 32 and len(first.line_channel_secret) == 32
    # Every process of one run, and a re-run on the same data dir, shares them ...
    again = Settings.from_env({"TENIN_DATA_DIR": str(one)})
    assert (again.secret_key, again.line_channel_secret, again.line_channel_access_token) == (
        first.secret_key,
        first.line_channel_secret,
        first.line_channel_access_token,
    )
    # ... another data dir has its own, and the file is readable by its owner only.
    assert Settings.from_env({"TENIN_DATA_DIR": str(other)}).secret_key != first.secret_key
    assert stat.S_IMODE((one / "secrets.json").stat().st_mode) == 0o600


def test_a_secret_given_in_the_embedded_default_wins(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(48)
    s = Settings.from_env({"TENIN_DATA_DIR": str(tmp_path), "TENIN_SECRET_KEY": key})
    assert s.secret_key == key
    assert s.line_channel_secret != PUBLISHED["LINE_CHANNEL_SECRET"]


def test_previous_keys_are_parsed_in_order_and_verify_after_the_current() -> None:
    old, older = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    s = settings(TENIN_PREVIOUS_SECRET_KEYS=f" {old}, ,{older} ", TENIN_PSEUDONYM_KEY=older)
    assert s.previous_secret_keys == (old, older)
    assert s.secret_keys == (STRONG["TENIN_SECRET_KEY"], old, older)
    assert require_secrets(s) is s


def test_a_weak_previous_key_is_refused() -> None:
    old = secrets.token_urlsafe(48)
    s = settings(
        TENIN_PREVIOUS_SECRET_KEYS=f"{old},tenin-dev-secret-change-me", TENIN_PSEUDONYM_KEY=old
    )
    assert "TENIN_PREVIOUS_SECRET_KEYS entry 2 is a published default" in refusal(s)


def test_pseudonyms_keep_their_key_across_a_rotation() -> None:
    first = settings()
    assert first.pseudonym_key == first.secret_key  # before any rotation
    old = STRONG["TENIN_SECRET_KEY"]
    rotated = settings(
        TENIN_SECRET_KEY=secrets.token_urlsafe(48),
        TENIN_PREVIOUS_SECRET_KEYS=old,
        TENIN_PSEUDONYM_KEY=old,
    )
    assert rotated.pseudonym_key == first.pseudonym_key
    assert rotated.secret_key != first.secret_key


def test_rotating_without_pinning_the_pseudonym_key_is_refused() -> None:
    rotated = settings(
        TENIN_SECRET_KEY=secrets.token_urlsafe(48),
        TENIN_PREVIOUS_SECRET_KEYS=STRONG["TENIN_SECRET_KEY"],
    )
    assert "TENIN_PSEUDONYM_KEY is not set while TENIN_PREVIOUS_SECRET_KEYS is" in refusal(rotated)
    assert "TENIN_PSEUDONYM_KEY is shorter" in refusal(settings(TENIN_PSEUDONYM_KEY="short"))
