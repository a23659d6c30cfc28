"""Where the demo runs: the embedded default, or real services from the environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.embedded import EmbeddedStack, free_port
from shared.secret_keys import embedded_secrets

REAL_VARS = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
# The three services and the marketer console each get a port.
HTTP_PROCESSES = ("campaign_engine", "chat_agent", "redemption_tracker", "console")
DEMO_RATE = "10000/100000"  # requests per second / burst, for the demo's shared keys


@contextmanager
def demo_environment(
    state_dir: Path, against_services: bool, line_api_base: str
) -> Iterator[dict[str, str]]:
    """The environment the three services run with (embedded servers started and stopped here)."""
    base = dict(os.environ)
    ports = {name: free_port() for name in HTTP_PROCESSES}
    common = {
        "TENIN_DATA_DIR": str(state_dir),
        # Random per state directory and kept in it: every process of the run shares
        # them, and a re-run on the same directory still verifies its earlier codes.
        **embedded_secrets(state_dir),
        "MESSAGING_API_BASE": line_api_base,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['chat_agent']}",
        "TENIN_LOG_FORMAT": "json",
        **{f"TENIN_DEMO_PORT_{k.upper()}": str(v) for k, v in ports.items()},
        # One members key and one till per store carry a whole simulated town, a week in
        # minutes: per-key and per-store limits sized for one real client would refuse it
        # (docs/interfaces.md § Rate limits). Per-customer limits keep their defaults.
        **{f"TENIN_RATE_LIMIT_{name}": DEMO_RATE for name in ("KEY_MEMBERS", "KEY_POS", "STORE")},
    }
    if against_services:
        missing = [name for name in REAL_VARS if not base.get(name)]
        if missing:
            raise SystemExit(
                f'--against-services needs {", ".join(missing)} (eval "$(scripts/services up)")'
            )
        yield {
            **base,
            **common,
            "TENIN_BROKER_FLAVOR": base.get("TENIN_BROKER_FLAVOR", "kafka"),
            # A shared cluster keeps other runs' streams: this run reads and writes its own.
            "TENIN_TOPIC_NAMESPACE": base.get("TENIN_TOPIC_NAMESPACE")
            or f"demo-{secrets.token_hex(4)}.",
        }
        return
    for name in REAL_VARS:
        base.pop(name, None)
    with EmbeddedStack(state_dir / "embedded") as embedded:
        yield {**base, **common, **embedded, "DATABASE_URL": f"sqlite:///{state_dir / 'tenin.db'}"}


def ports_of(env: dict[str, str]) -> dict[str, int]:
    """The HTTP ports chosen for the three services and the console."""
    return {
        name: int(env[f"TENIN_DEMO_PORT_{name.upper()}"])
        for name in HTTP_PROCESSES
        if f"TENIN_DEMO_PORT_{name.upper()}" in env
    }


def tenin(env: dict[str, str], *args: str) -> str:
    """Run a `tenin` subcommand in the demo's environment; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "tenin.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tenin {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def create_key(env: dict[str, str], role: str, store: str | None = None) -> str:
    """A new API key (the last line `tenin keys create` prints)."""
    args = ["keys", "create", "--role", role] + (["--store", store] if store else [])
    return tenin(env, *args).strip().splitlines()[-1]
