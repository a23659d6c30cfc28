"""The one place tests get their secrets from (docs/architecture.md § Secrets and key rotation).

Outside the embedded default tenin refuses to start on a missing, published or short
secret, and the suite points at real services. `install()` (called by tests/conftest.py)
puts strong values into this process's environment, so every `Settings.from_env` and
every spawned `tenin serve`/`tenin worker` sees them: the ones `scripts/test` exported
when they are fit, fresh random ones otherwise.
"""

from __future__ import annotations

import os

from shared.secret_keys import REQUIRED, fresh_secrets, secret_problem


def install() -> dict[str, str]:
    """Make the three required secrets strong in os.environ; returns them."""
    fresh = fresh_secrets()
    for name in REQUIRED:
        if secret_problem(name, os.environ.get(name, "")) is not None:
            os.environ[name] = fresh[name]
    return {name: os.environ[name] for name in REQUIRED}


# Real services that nothing answers on: a refusal must come before any connection.
UNREACHABLE_SERVICES = {
    "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
}
