"""The pieces the live weeks demo rests on (docs/learning.md § Weeks demo), fast and in process.

The live run itself (`tenin demo --weeks N --retrain --live`) takes minutes a week and is a
documented command, not a test; the in-process loop is tested in
tests/unit/campaign_engine/modeling_gate/test_weeks.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from services.campaign_engine.bootstrap import bootstrap
from shared.config import DEFAULT_UPLIFT_DIR, Settings
from shared.db import make_engine
from shared.model.scoring import read_current
from tenin.demo.campaign_world import CampaignWorld
from tenin.demo.runner import OFFERS, offer_features


def test_the_engine_ranks_by_propensity_until_an_uplift_model_is_promoted(tmp_path: Path) -> None:
    uplift_dir = tmp_path / "uplift"
    uplift_dir.mkdir()
    settings = Settings.from_env(
        {
            "TENIN_POLICY": "uplift",
            "TENIN_UPLIFT_DIR": str(uplift_dir),
            "TENIN_SECRET_KEY": "k" * 32,
        }
    )
    engine = bootstrap(settings, db=make_engine("sqlite://"))
    assert settings.uplift_dir == uplift_dir
    assert engine.uplift_scorer is None  # no CURRENT yet: the propensity EV decides

    version = read_current(DEFAULT_UPLIFT_DIR)  # "promote" the shipped pair into the directory
    shutil.copytree(DEFAULT_UPLIFT_DIR / version, uplift_dir / version)
    (uplift_dir / "CURRENT").write_text(version + "\n", encoding="utf-8")

    scorer = engine.uplift_scorer  # the same engine, no restart
    assert scorer is not None
    assert scorer.model_version == version


def test_the_evaluation_population_meets_the_live_campaigns_offers() -> None:
    world = CampaignWorld.for_campaign(50, seed=3)
    first = list(world.requests(20, seed=9))
    again = list(world.requests(20, seed=9))
    campaign = [offer_features(o) for o in OFFERS]
    assert all(r.offers == campaign for r in first)
    assert {r.context.intent for r in first} == {"deal_seeking"}
    assert [r.customer.customer_id for r in first] == [r.customer.customer_id for r in again]
    hours = np.array([r.context.local_hour for r in first])
    assert hours.min() >= 0 and hours.max() < 24
