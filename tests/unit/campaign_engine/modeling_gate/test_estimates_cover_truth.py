"""Off-policy estimates checked against the simulator's truth: the doubly-robust 95% interval (the
one the gate uses) covers a new policy's true value in at least 18 of 20 seeds.

Measured over 100 other seeds of this set-up: DR 95, IPS 92, SNIPS 89 (its delta-method interval
is a little narrow when the importance weights are heavy); here all three are printed.
"""

from __future__ import annotations

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import candidate
from services.campaign_engine.modeling.dataset import SimWorld
from services.campaign_engine.modeling.evaluate import estimate, simulate_log
from shared.config import DEFAULT_MODEL_DIR
from shared.model.scoring import PropensityScorer
from tests.unit.campaign_engine.modeling_gate.conftest import Models

SEEDS = range(2000, 2020)
NEW_POLICY = PolicyConfig(mode="greedy")
LOGGING = PolicyConfig(mode="epsilon_greedy", epsilon=0.5)


def test_intervals_cover_the_true_value_of_a_new_policy_in_18_of_20_seeds(models: Models) -> None:
    logger = PropensityScorer(DEFAULT_MODEL_DIR)  # the shipped model logs the decisions
    new = candidate.load(models.model_dir, "propensity", models.good["version"])
    covered = {"ips": 0, "snips": 0, "doubly_robust": 0}
    for seed in SEEDS:
        world = SimWorld.create(2000, seed)
        log = simulate_log(world, 2000, seed, LOGGING, logger.score)
        results = estimate(log, candidate.p_redeem(new, log.X), NEW_POLICY)
        truth = results["truth_candidate"].value  # its expected value on these very requests
        assert truth != results["truth_logging"].value  # a different policy from the logger's
        for name in covered:
            covered[name] += results[name].covers(truth)
    print(f"\ncovered in {len(SEEDS)} seeds: {covered}")
    assert covered["doubly_robust"] >= 18, covered
