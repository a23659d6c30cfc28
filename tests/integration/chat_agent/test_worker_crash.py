"""A chat worker killed with SIGKILL mid-stream loses nothing and answers nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.chat_agent.app import create_app
from services.chat_agent.bootstrap import bootstrap
from services.chat_agent.line.events import customer_id_for
from services.chat_agent.models import Delivery
from services.chat_agent.worker import CONSUMED, PRODUCED
from shared.bus import broker_from_settings
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from tenin.line_recorder import LineRecorder
from tests.integration.chat_agent.conftest import ACCESS_TOKEN, CHANNEL_SECRET
from tests.support.kafka_tools import start_groups_at_end
from tests.support.line_payloads import signed_webhook, text_event, user_id
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
WORKER = textwrap.dedent(
    """
    import sys, threading
    from shared.config import Settings
    from shared.logging import configure_logging
    from shared.runtime import install_stop_signals
    from services.chat_agent.delivery.loop import RetryPolicy
    from services.chat_agent.worker import run
    settings = Settings.from_env(service="chat_agent")
    configure_logging("chat_agent", "WARNING", True)
    stop = threading.Event()
    install_stop_signals(stop)
    policy = RetryPolicy(base_backoff_s=0.2, lease_s=2.0)
    sys.exit(run(settings, stop, group_prefix=sys.argv[1], delivery_policy=policy))
    """
)


def pending(sessions: sessionmaker[Session], customer_ids: list[str]) -> int:
    with sessions() as session:
        rows = session.execute(
            select(Delivery.delivery_id).where(
                Delivery.status == "pending", Delivery.customer_id.in_(customer_ids)
            )
        ).all()
        return len(rows)


def start_worker(settings: Settings, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "TENIN_SECRET_KEY": settings.secret_key,
        "LINE_CHANNEL_SECRET": settings.line_channel_secret,
        "LINE_CHANNEL_ACCESS_TOKEN": settings.line_channel_access_token,
        "MESSAGING_API_BASE": settings.messaging_api_base,
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, prefix],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_mid_stream_neither_loses_nor_duplicates(real_settings: Settings) -> None:
    with LineRecorder(token=ACCESS_TOKEN) as line:
        settings = replace(
            real_settings,
            service="chat_agent",
            line_channel_secret=CHANNEL_SECRET,
            line_channel_access_token=ACCESS_TOKEN,
            messaging_api_base=line.base_url,
        )
        broker_from_settings(settings).ensure_topics([*CONSUMED, *PRODUCED])
        prefix = f"chat_agent-crash-{uuid.uuid4().hex[:8]}"
        start_groups_at_end(
            settings.kafka_bootstrap_servers or "",
            [f"{prefix}.{n}" for n in ("inbound", "offers", "coupons", "campaigns")],
            list(CONSUMED),
        )
        deps = bootstrap(settings)
        client = create_app(settings, deps=deps).test_client()
        users = [user_id() for _ in range(30)]
        worker = start_worker(settings, prefix)
        try:
            for n, user in enumerate(users):
                event = text_event(user, f"hello {n}")
                line.own_reply_token(event["replyToken"], user)
                body, headers = signed_webhook(CHANNEL_SECRET, [event])
                assert client.post("/webhooks/line", data=body, headers=headers).status_code == 200
            wait_for(lambda: len(line.delivered) >= 3, timeout=120, what="the first answers")
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            worker = start_worker(settings, prefix)
            wait_for(
                lambda: all(line.delivered_to(u) for u in users),
                timeout=120,
                what="an answer for every customer",
            )
            # Anything still in flight (a lapsed lease, a redelivered record) settles first.
            sessions = make_session_factory(make_engine(settings.effective_database_url))
            cids = [customer_id_for(settings.secret_key, u) for u in users]
            wait_for(lambda: pending(sessions, cids) == 0, timeout=30, what="no pending deliveries")
            assert [len(line.delivered_to(u)) for u in users] == [1] * len(users)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
            deps.publisher.close()
