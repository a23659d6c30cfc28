"""A campaign drop over the real services, for the drop's end-to-end test and bench/drop.py.

A database of its own (migrated), a topic namespace of its own on the shared Kafka, the
recording LINE server (optionally rate-limiting pushes), N simulated followers known to
both services, one active campaign, and `tenin worker campaign_engine` / `tenin worker
chat_agent` (and, with relay processes, `tenin relay …`) as subprocesses that can be
SIGKILLed and restarted. The marketer API runs in
this process (Flask test client on the same database).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import redis
from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Engine as SqlEngine

from services.campaign_engine.app import create_app
from services.campaign_engine.bootstrap import FEATURE_PREFIX
from services.campaign_engine.campaigns.commands import change_status, create_campaign
from services.campaign_engine.campaigns.schemas import CampaignIn
from services.campaign_engine.models import Customer as EngineCustomer
from services.campaign_engine.models import Decision, DropMember
from services.chat_agent.models import Customer as ChatCustomer
from shared.auth import create_key
from shared.config import Settings
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow
from shared.secret_keys import fresh_secrets
from tenin.line_recorder import PUSH, LineRecorder
from tests.support.databases import create_database, drop_database, migrate
from tests.support.kafka_tools import delete_namespace
from tests.unit.campaign_engine.fakes import campaign_body as fake_campaign_body

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("campaign_engine", "chat_agent")


def campaign_body(n: int, **over: Any) -> dict[str, Any]:
    """An asap campaign with one offer, a 10% holdout and room for `n` coupons, running now."""
    return fake_campaign_body(
        utcnow(), **{"budget": {"max_coupons": n * 2}, "holdout_pct": 10, **over}
    )


@dataclass
class DropStack:
    settings: Settings
    line: LineRecorder
    env: dict[str, str]
    db: SqlEngine
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    peak_kb: dict[str, int] = field(default_factory=dict)
    cpu_by_pid: dict[int, tuple[str, float]] = field(default_factory=dict)  # name, CPU s
    followers: list[tuple[str, str]] = field(default_factory=list)  # (customer_id, user id)

    @property
    def sessions(self) -> Any:
        return make_session_factory(self.db)

    # --- world --------------------------------------------------------------------

    def seed_followers(self, n: int) -> None:
        """`n` following, opted-in customers known to both services (bulk inserts)."""
        now = utcnow()
        new = [(f"c_{uuid.uuid4().hex[:16]}", f"U{uuid.uuid4().hex}") for _ in range(n)]
        engine_rows = [
            {"customer_id": c, "opted_out": False, "following": True, "linked": False,
             "language": "ja", "updated_at": now}
            for c, _ in new
        ]  # fmt: skip
        chat_rows = [
            {"customer_id": c, "line_user_id": u, "language": "ja", "followed": True,
             "follow_changed_ms": 0, "opted_out": False, "consent_changed_ms": 0,
             "last_event_ms": 0, "created_at": now, "updated_at": now}
            for c, u in new
        ]  # fmt: skip
        with self.db.begin() as conn:
            for i in range(0, n, 10_000):
                conn.execute(
                    insert(cast(Table, EngineCustomer.__table__)), engine_rows[i : i + 10_000]
                )
                conn.execute(insert(cast(Table, ChatCustomer.__table__)), chat_rows[i : i + 10_000])
        self.followers += new

    def active_campaign(self, **over: Any) -> str:
        with unit_of_work(self.sessions) as session:
            campaign = create_campaign(
                session, CampaignIn.model_validate(campaign_body(len(self.followers), **over))
            )
            change_status(session, campaign, "activate", utcnow())
            return campaign.campaign_id

    def marketer(self) -> tuple[Any, dict[str, str]]:
        """A test client of the campaign API and a marketer's headers."""
        with unit_of_work(self.sessions) as session:
            key = create_key(session, self.settings.secret_key, "marketer", None)
        client = create_app(replace(self.settings, service="campaign_engine")).test_client()
        return client, {"Authorization": f"Bearer {key}"}

    # --- processes ----------------------------------------------------------------

    def start(self, service: str, name: str | None = None, command: str = "worker") -> None:
        """Start a worker of `service` (or, with command "relay", its relay process), known as
        `name` (default: the service's name, or "<service> relay")."""
        default = service if command == "worker" else f"{service} {command}"
        self.processes[name or default] = subprocess.Popen(
            [sys.executable, "-m", "tenin.cli", command, service],
            env={**os.environ, **self.env},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, service: str) -> None:
        """SIGKILL, as a crash would."""
        process = self.processes.pop(service)
        self._remember_peak(service, process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def sample_peaks(self) -> None:
        for service, process in self.processes.items():
            self._remember_peak(service, process.pid)

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) each named worker used, over all its processes."""
        total: dict[str, float] = {}
        for name, seconds in self.cpu_by_pid.values():
            total[name] = total.get(name, 0.0) + seconds
        return total

    def _remember_peak(self, service: str, pid: int) -> None:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        ticks = os.sysconf("SC_CLK_TCK")
        utime, stime = stat.rsplit(")", 1)[1].split()[11:13]  # fields 14 and 15
        self.cpu_by_pid[pid] = (service, (int(utime) + int(stime)) / ticks)
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                kb = int(line.split()[1])
                self.peak_kb[service] = max(self.peak_kb.get(service, 0), kb)

    def stop_all(self) -> None:
        self.sample_peaks()
        for service in list(self.processes):
            process = self.processes.pop(service)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def forget_followers(self) -> None:
        """Delete the followers' feature hashes the engine wrote to the shared Redis. A
        customer's features have no TTL (they are the customer's state), so without this
        every drop's synthetic followers stayed: millions of keys after a day of benches.
        The campaign's own keys expire by themselves."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            for i in range(0, len(self.followers), 10_000):
                page = self.followers[i : i + 10_000]
                client.unlink(*(FEATURE_PREFIX + customer_id for customer_id, _ in page))
        except redis.RedisError as error:  # tidying only: never hide how the run ended
            warnings.warn(f"drop stack: the followers' Redis keys stay ({error})", stacklevel=1)
        finally:
            client.close()

    # --- reading ------------------------------------------------------------------

    def pushes_per_user(self) -> Counter[str]:
        return Counter(d.to for d in self.line.delivered if d.channel == "push" and d.to)

    def push_times(self) -> list[float]:
        return sorted(d.at for d in self.line.delivered if d.channel == "push")

    def decisions_per_member(self, drop_id: str) -> Counter[str]:
        """How many decisions each member's request has (exactly one, when all is well)."""
        with self.sessions() as session:
            rows = session.execute(
                select(DropMember.customer_id, Decision.decision_id)
                .join(Decision, Decision.request_id == DropMember.request_id, isouter=True)
                .where(DropMember.drop_id == drop_id)
            ).all()
        return Counter(c for c, d in rows if d is not None)

    def push_calls(self) -> int:
        return len(self.line.calls(PUSH))


@contextmanager
def drop_stack(
    real_services: dict[str, str],
    *,
    push_rate_per_s: float | None = None,
    line_rate: float = 2000,
    outbox_relay: str = "thread",
) -> Iterator[DropStack]:
    """The stack, torn down afterwards (processes stopped, database dropped). With
    `outbox_relay` "process" the workers run no relay: start each service's with
    `start(service, command="relay")`."""
    server = real_services["DATABASE_URL"]
    url = create_database(server, prefix="tenin_drop")
    migrate(url)
    secrets = fresh_secrets()
    namespace = f"drop-{uuid.uuid4().hex[:8]}."
    with LineRecorder(
        token=secrets["LINE_CHANNEL_ACCESS_TOKEN"], push_rate_per_s=push_rate_per_s
    ) as line:
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": real_services["REDIS_URL"],
            "KAFKA_BOOTSTRAP_SERVERS": real_services["KAFKA_BOOTSTRAP_SERVERS"],
            "TENIN_TOPIC_NAMESPACE": namespace,
            "MESSAGING_API_BASE": line.base_url,
            "PUBLIC_BASE_URL": "http://tenin.test",
            "LINE_PUSH_RATE_PER_S": str(line_rate),
            "TENIN_LOG_LEVEL": "WARNING",
            "TENIN_OUTBOX_RELAY": outbox_relay,
            **secrets,
        }
        settings = Settings.from_env(env, service="campaign_engine")
        db = make_engine(url, pool_size=4)
        stack = DropStack(settings, line, env, db)
        try:
            yield stack
        finally:
            stack.stop_all()
            stack.forget_followers()
            db.dispose()
            drop_database(server, url)
            delete_namespace(real_services["KAFKA_BOOTSTRAP_SERVERS"], namespace)
