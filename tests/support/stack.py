"""The three services as separate processes (gunicorn + workers) on real Kafka,
PostgreSQL and Redis, with a recording server standing in for the LINE API."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.embedded import free_port
from shared.secret_keys import fresh_secrets
from tenin.clients import LineWebhookClient, MarketerClient, PosClient
from tenin.line_recorder import LineRecorder
from tenin.processes import SERVICES, ServiceSet

STORES = ("S001", "S002")


@dataclass
class RunningStack:
    services: ServiceSet
    line: LineRecorder
    env: dict[str, str]
    marketer: MarketerClient
    tills: dict[str, PosClient]
    webhooks: LineWebhookClient
    members_key: str  # the retailer's member site (account links)

    @property
    def secret_key(self) -> str:
        return self.env["TENIN_SECRET_KEY"]


def _key(env: dict[str, str], role: str, store: str | None = None) -> str:
    args = ["keys", "create", "--role", role] + (["--store", store] if store else [])
    out = subprocess.run(
        [sys.executable, "-m", "tenin.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return out.strip().splitlines()[-1]


def start_stack(
    real_services: dict[str, str], pg_url: str, log_dir: Path
) -> Iterator[RunningStack]:
    """Start everything; yields the running stack and stops it afterwards."""
    ports = {name: free_port() for name in SERVICES}
    with LineRecorder() as line:
        env = dict(os.environ)
        env.update(real_services)
        env.update(
            {
                "DATABASE_URL": pg_url,
                "TENIN_BROKER_FLAVOR": "kafka",
                # Its own topics and groups: earlier tests' streams stay out of this stack.
                "TENIN_TOPIC_NAMESPACE": f"e2e-{secrets.token_hex(4)}.",
                # Exploration off: scenarios count coupons exactly, and a 5% chance of the
                # policy exploring "no coupon" would make them flaky. tests/unit covers it.
                "TENIN_POLICY_EPSILON": "0",
                **fresh_secrets(),  # strong, or the services refuse to start
                "MESSAGING_API_BASE": line.base_url,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['chat_agent']}",
                "TENIN_DATA_DIR": str(log_dir / "data"),
            }
        )
        line.token = env["LINE_CHANNEL_ACCESS_TOKEN"]
        services = ServiceSet(env, log_dir, ports)
        try:
            services.start()
            marketer = MarketerClient(
                services.url("campaign_engine"),
                services.url("redemption_tracker"),
                _key(env, "marketer"),
            )
            tills = {
                s: PosClient(services.url("redemption_tracker"), _key(env, "pos", s), s)
                for s in STORES
            }
            yield RunningStack(
                services,
                line,
                env,
                marketer,
                tills,
                LineWebhookClient(services.url("chat_agent"), env["LINE_CHANNEL_SECRET"]),
                _key(env, "members"),
            )
        finally:
            services.stop()
            for proc in services.processes.values():
                if proc.process is not None and proc.process.returncode not in (0, -15, None):
                    print(f"--- {proc.name} exited {proc.process.returncode}:\n{proc.tail()}")
