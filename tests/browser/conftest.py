"""The console in a real browser: Debian's chromium driven by Playwright, against the real
stack (docs/architecture.md § Running it): the three services and their workers on
PostgreSQL, Redis and Kafka, the recording LINE server, and `tenin serve console`.

The stack is the features' own (tests/steps/conftest.py: `stack`, `world`), started once
per session for these tests; the console runs beside it as one more process.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from shared.embedded import free_port
from tenin.processes import ServiceProcess
from tests.browser.pages import open_context
from tests.browser.screens import Shoot, screenshot_dir, take_screenshot
from tests.steps import conftest as features
from tests.support.stack import RunningStack

# The features' running stack and per-scenario World, bound here for the browser tests.
stack = features.stack
world = features.world
# The live regions refresh every second here (5 by default), so a change shows up fast.
POLL_SECONDS = "1"


def chromium_path() -> str | None:
    """Debian's chromium (`scripts/services browser` installs it): TENIN_CHROMIUM or PATH."""
    return os.environ.get("TENIN_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="package", autouse=True)
def stack_stopped_after_these_tests(stack: RunningStack) -> Iterator[None]:
    """Stop the stack's processes once the browser tests are done: the fixture is the
    features' session-long one, and an idle stack costs about an eighth of a core for the
    rest of the run. (Its database goes with the session.)"""
    yield
    stack.services.stop()


@pytest.fixture(scope="package")
def console_url(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tenin serve console` against the stack's engine and tracker; yields its base URL."""
    port = free_port()
    env = {
        **stack.env,
        "TENIN_CAMPAIGN_ENGINE_URL": stack.services.url("campaign_engine"),
        "TENIN_REDEMPTION_TRACKER_URL": stack.services.url("redemption_tracker"),
        "TENIN_CONSOLE_POLL_SECONDS": POLL_SECONDS,
        # A dozen sign-ins from one address within a minute are these tests, not a guesser:
        # the limit itself is tested in tests/integration/console.
        "TENIN_RATE_LIMIT_CONSOLE_SIGN_IN": "1000/10000",
    }
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "tenin.cli", "serve", "console", "--port", str(port)]
    console = ServiceProcess(
        "console.http",
        argv,
        env,
        tmp_path_factory.mktemp("console") / "console.http.log",
        health_url=f"{url}/healthz",
    )
    console.start()
    try:
        console.wait_healthy()
        yield url
    finally:
        console.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Headless chromium; fails under CI and skips locally when it is not installed."""
    path = chromium_path()
    if not path:
        message = "chromium not installed: run `scripts/services browser`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        # Root has no user namespaces for chromium's sandbox (CI and this machine run as root).
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=args)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser, console_url: str) -> Iterator[Page]:
    """A page in a fresh profile: signed out."""
    context = open_context(chromium, console_url)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def marketer_key(stack: RunningStack) -> str:
    """The stack's marketer key (its API client's; `tenin keys create` costs seconds)."""
    return str(stack.marketer.http.headers["Authorization"]).removeprefix("Bearer ")


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/console/ with TENIN_SCREENSHOTS=1, else a tmp dir."""
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def shoot(shots: Path) -> Shoot:
    """`shoot(page, name, full_page=True)`: take a named screenshot of a page."""
    return functools.partial(take_screenshot, directory=shots)
