"""Rotating TENIN_SECRET_KEY on the tracker, on real PostgreSQL: a coupon redeemed before
the rotation can be voided after it (it gave a 500), a code and an API key made under the
previous key keep working, and member hashes do not change."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker, bootstrap
from services.redemption_tracker.models import Transaction
from shared.config import Settings
from shared.crypto import member_hash
from tests.integration.redemption_tracker.support import one_coupon, void
from tests.support.redemption_tracker.builders import CampaignSpec, keys, tx, uid


@pytest.fixture(scope="module")
def keys_before_and_after(real_settings: Settings) -> Iterator[tuple[Tracker, Tracker, str]]:
    """The tracker before and after a rotation of TENIN_SECRET_KEY, on one database."""
    old, new = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    env = {
        "DATABASE_URL": real_settings.database_url or "",
        "REDIS_URL": real_settings.redis_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": real_settings.kafka_bootstrap_servers or "",
    }
    before = bootstrap(replace(real_settings, secret_key=old))
    rotated = Settings.from_env(
        {
            **env,
            "TENIN_SECRET_KEY": new,
            "TENIN_PREVIOUS_SECRET_KEYS": old,
            "TENIN_PSEUDONYM_KEY": old,
        }
    )
    after = bootstrap(replace(rotated, data_dir=real_settings.data_dir), engine=before.engine)
    yield before, after, old
    before.engine.dispose()


def test_a_coupon_redeemed_before_the_rotation_is_voided_after_it(
    keys_before_and_after: tuple[Tracker, Tracker, str],
) -> None:
    before, after, _ = keys_before_and_after
    store = uid("S")
    campaign = CampaignSpec(before)
    code = campaign.code()
    t = tx(total=2000, coupons=[code])
    redeemed = one_coupon(
        create_app(tracker=before).test_client(), keys(before, store)["pos"], store, t
    )
    assert redeemed["status"] == "redeemed"

    r = void(create_app(tracker=after).test_client(), keys(after, store)["pos"], store, t)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["coupons"] == [{"code": code, "discount": 100, "reusable": True}]


def test_old_codes_and_old_api_keys_work_after_the_rotation(
    keys_before_and_after: tuple[Tracker, Tracker, str],
) -> None:
    before, after, old = keys_before_and_after
    store = uid("S")
    old_pos_key = keys(before, store)["pos"]  # hashed under the previous key
    code = CampaignSpec(before).code()  # signed under the previous key
    member = "M" + uid().upper()
    t = tx(coupons=[code], member_id=member)

    client = create_app(tracker=after).test_client()
    assert one_coupon(client, old_pos_key, store, t)["status"] == "redeemed"
    with after.sessions() as s:
        row = s.execute(
            select(Transaction).where(Transaction.transaction_id == t["transaction_id"])
        ).scalar_one()
    assert row.member_hash == member_hash(old, member)  # the pseudonym key did not move
