"""The dead-letter seal (open with current or previous keys, never with another) and the
readiness probes' cache and budget, driven with a fake clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.bus import Message
from shared.dead_letters import DeadLetterSeal, dead_letter_body, redact
from shared.http.probes import Probes


def test_a_sealed_record_opens_under_the_key_or_after_a_rotation_and_not_otherwise() -> None:
    old = DeadLetterSeal("old-secret-key-0123456789abcdef0123")
    token = old.seal({"original": "sentinel-text", "error": "boom"})
    assert "sentinel-text" not in token
    rotated = DeadLetterSeal(
        "new-secret-key-0123456789abcdef0123", ["old-secret-key-0123456789abcdef0123"]
    )
    assert rotated.open(token) == {"original": "sentinel-text", "error": "boom"}
    with pytest.raises(ValueError, match="unknown key"):
        DeadLetterSeal("someone-elses-key-0123456789abcdef").open(token)


def test_redaction_keeps_the_field_and_reason_but_not_the_values() -> None:
    error = (
        "1 validation error for PosTransaction\nmember_id\n  String should have at most 64"
        " characters [type=string_too_long, input_value='M1234567xxxx', input_type=str]"
    )
    redacted = redact(error + f' from U{"a" * 32} saying "hello there"')
    assert "member_id" in redacted and "at most 64 characters" in redacted
    assert "M1234567" not in redacted and "a" * 32 not in redacted and "hello" not in redacted


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_result_is_cached_for_the_ttl_then_refreshed_in_the_background() -> None:
    clock, calls = FakeClock(), []

    def check() -> bool:
        calls.append(clock.now)
        return True

    probes = Probes({"database": check}, budget_s=1.5, ttl_s=5.0, clock=clock)
    assert probes.results() == {"database": True}
    clock.now += 4.9
    assert probes.results() == {"database": True} and len(calls) == 1
    clock.now += 0.2
    probes.results()
    wait_until(lambda: len(calls) == 2)


def test_a_check_that_hangs_reads_as_failed_after_the_budget_and_runs_only_once() -> None:
    release, runs = threading.Event(), []

    def hangs() -> bool:
        runs.append(1)
        release.wait(5)
        return True

    probes = Probes({"kafka": hangs}, budget_s=0.2, ttl_s=5.0)
    started = time.monotonic()
    assert probes.results() == {"kafka": False}
    assert 0.15 < time.monotonic() - started < 1.0  # the first probe waits the budget, no more
    crowd_started = time.monotonic()
    assert all(probes.results() == {"kafka": False} for _ in range(16))
    assert time.monotonic() - crowd_started < 0.2  # later probes do not wait at all
    release.set()
    wait_until(lambda: probes.results() == {"kafka": True})
    assert len(runs) == 1


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not met")


def test_an_operator_reads_a_sealed_record_with_the_services_secrets(tmp_path: Path) -> None:
    secret = "operator-test-secret-key-0123456789abcdef"
    message = Message("pos.transactions", 0, 7, "S001", b'{"member_id": "M1234567"}')
    record = dead_letter_body(message, "g", ValueError("bad"), 1, DeadLetterSeal(secret))
    assert b"M1234567" not in record
    env = {**os.environ, "TENIN_SECRET_KEY": secret, "TENIN_DATA_DIR": str(tmp_path)}
    env.pop("TENIN_PREVIOUS_SECRET_KEYS", None)
    opened = subprocess.run(
        [sys.executable, "-m", "shared.dead_letters"],
        input=record + b"\n",
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    sealed = json.loads(opened.stdout)["sealed"]
    assert sealed["original"] == '{"member_id": "M1234567"}' and sealed["error"] == "bad"
