"""`tenin serve`, `tenin worker` and the app factories refuse to start outside the embedded
default when a secret is missing, published or short, and say which variable
(docs/architecture.md § Secrets and key rotation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import ConfigError
from shared.embedded import free_port
from shared.secret_keys import fresh_secrets
from tests.support.strong_secrets import UNREACHABLE_SERVICES

REPO = Path(__file__).resolve().parents[3]
SERVICES = ("campaign_engine", "chat_agent", "redemption_tracker")
REAL = UNREACHABLE_SERVICES
STRONG = fresh_secrets()
# (variable, value, what the message says): one case per way a secret is unfit.
UNFIT = [
    ("TENIN_SECRET_KEY", None, "TENIN_SECRET_KEY is not set"),
    ("LINE_CHANNEL_SECRET", "dev-channel-secret", "LINE_CHANNEL_SECRET is a published default"),
    ("LINE_CHANNEL_ACCESS_TOKEN", "short-token", "LINE_CHANNEL_ACCESS_TOKEN is shorter than 32"),
]


def environment(name: str, value: str | None, base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in STRONG}
    env.update({**REAL, **STRONG})
    env.pop(name)
    if value is not None:
        env[name] = value
    return env


def run_tenin(env: dict[str, str], *args: str, timeout: float = 30.0) -> tuple[int, str]:
    """Exit code and stderr of `tenin …`; a process still running at `timeout` is killed
    (with its gunicorn workers) and counts as having started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenin.cli", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"tenin {' '.join(args)} started instead of refusing")
    return proc.returncode, err


@pytest.mark.parametrize(("name", "value", "says"), UNFIT)
def test_tenin_serve_refuses_and_names_the_variable(
    name: str, value: str | None, says: str
) -> None:
    code, err = run_tenin(
        environment(name, value, dict(os.environ)),
        "serve",
        "redemption_tracker",
        "--port",
        str(free_port()),
    )
    assert code == 2, err
    assert says in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("name", "value", "says"), UNFIT)
def test_tenin_worker_refuses_and_names_the_variable(
    name: str, value: str | None, says: str
) -> None:
    code, err = run_tenin(environment(name, value, dict(os.environ)), "worker", "chat_agent")
    assert code == 2, err
    assert says in err
    assert "Traceback" not in err


def test_tenin_keys_create_refuses_a_published_secret_key() -> None:
    env = environment("TENIN_SECRET_KEY", "tenin-dev-secret-change-me", dict(os.environ))
    code, err = run_tenin(env, "keys", "create", "--role", "marketer")
    assert code == 2
    assert "TENIN_SECRET_KEY is a published default" in err


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("name", "value", "says"), UNFIT)
def test_the_app_factories_refuse(
    monkeypatch: pytest.MonkeyPatch, service: str, name: str, value: str | None, says: str
) -> None:
    import importlib

    for var in ("TENIN_PREVIOUS_SECRET_KEYS", "TENIN_PSEUDONYM_KEY"):
        monkeypatch.delenv(var, raising=False)
    for var, val in environment(name, value, {}).items():
        monkeypatch.setenv(var, val)
    if value is None:
        monkeypatch.delenv(name, raising=False)
    create_app = importlib.import_module(f"services.{service}.app").create_app
    with pytest.raises(ConfigError, match=says):
        create_app()
