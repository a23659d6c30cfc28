"""`tenin demo --weeks N --retrain --live`: the learning loop through the running services
(docs/learning.md § Weeks demo, "Through the running services").

The three services run as processes, as in `tenin demo` (embedded default, or real services
with --against-services), with TENIN_POLICY=uplift and model directories of the run's own.
Each simulated week the demo's drivers (tenin/demo/simulation.py WeekDriver) chat through
signed webhooks and shop through the POS feed: the campaign_engine worker decides and logs
every offer request, the tracker turns the till's transactions into sales and coupon events,
and the engine joins them. After each week `tenin model retrain`'s loop (modeling/retrain.py
retrain_kind) reads that database, trains an uplift candidate, judges it and promotes or
refuses it; the running worker loads the promoted version from CURRENT without a restart.
Until the first promotion the uplift directory has no CURRENT and the engine ranks by the
propensity model's expected value, as a new install does.

Time: the services stamp decisions and sales with the wall clock, and the demo compresses a
simulated day into `seconds_per_day` wall seconds, paced, so the join's spend window is that
many seconds per simulated day. Coupons expire 48–72 wall hours after issue, which a run never
reaches; so the loop is handed an explicit `now` past every expiry and an `until` where the
compressed spend windows have closed (decisions of the last days of a week are judged the week after).
The served policy is scored before the first week and after each on a fixed evaluation
population by the simulator's hidden truth, as tenin/demo/weeks.py does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling.gate import promotion_margin
from services.campaign_engine.modeling.lifecycle import Place
from services.campaign_engine.modeling.retrain import KindReport, retrain_kind
from shared.config import DEFAULT_MODEL_DIR
from shared.db import make_engine
from shared.model.scoring import PropensityScorer, UpliftScorer, read_current
from shared.model.simulator import STORES, Population, ShoppingSimulator
from tenin.clients import LineWebhookClient, MarketerClient, PosClient
from tenin.demo.campaign_world import CampaignWorld
from tenin.demo.linking import MemberSite
from tenin.demo.runner import OFFERS, campaign_body, offer_features
from tenin.demo.simulation import WeekDriver, WeekRecord
from tenin.demo.stack import create_key, demo_environment, ports_of, tenin
from tenin.demo.weeks import (
    WeeksOptions,
    after_week,
    options_from,
    report_weeks,
    served_policy,
)
from tenin.demo.weeks_report import WeekRow, write_outputs
from tenin.line_recorder import LineRecorder
from tenin.processes import ServiceSet

WINDOW_DAYS = 3  # spend window in simulated days: the coupons' longest validity (72 h)
EXPIRY = timedelta(hours=max(int(o["valid_hours"]) for o in OFFERS))


@dataclass(frozen=True)
class LiveOptions:
    weeks: int = 3
    customers: int = 1500
    seconds_per_day: float = 20.0  # wall seconds one simulated day takes (paced)
    epsilon: float = 0.1
    against_services: bool = False
    common: WeeksOptions = WeeksOptions()  # seed, holdout, evaluation population, out dir


def _model_dirs(state: Path) -> tuple[Path, Path]:
    """The run's own propensity (a copy of the shipped CURRENT) and empty uplift directories."""
    prop_dir, upl_dir = state / "models" / "propensity", state / "models" / "uplift"
    shipped = read_current(DEFAULT_MODEL_DIR)
    shutil.copytree(DEFAULT_MODEL_DIR / shipped, prop_dir / shipped)
    (prop_dir / "CURRENT").write_text(shipped + "\n", encoding="utf-8")
    upl_dir.mkdir(parents=True)
    return prop_dir, upl_dir


def _engine_schema(db: Engine) -> str | None:
    """Where the engine's tables are: its schema on PostgreSQL, attached files on SQLite."""
    return "campaign_engine" if db.dialect.name == "postgresql" else None


def _settled(db: Engine, say: Callable[[str], None], timeout: float = 120.0) -> None:
    """Wait until the engine has joined the week's sales and redemptions (counts stop moving)."""
    prefix = f"{schema}." if (schema := _engine_schema(db)) else ""
    sql = text(
        f"SELECT (SELECT COUNT(*) FROM {prefix}customer_sales)"
        f" + (SELECT COUNT(*) FROM {prefix}redemptions_seen)"
    )
    last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connect() as conn:
            count = int(conn.execute(sql).scalar_one())
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since > 3.0:
            return
        time.sleep(0.5)
    say(f"the engine's sales and redemptions still moving after {timeout:.0f}s; going on")


class LiveWeeks:
    """One run: services up, the campaign, the driver, the loop after each simulated week."""

    def __init__(self, opts: LiveOptions, say: Callable[[str], None]) -> None:
        self.opts, self.say = opts, say
        self.day_starts: list[float] = []  # wall-clock epoch seconds when each simulated day began
        self.overruns = 0

    def run(self) -> list[WeekRow]:
        state = Path(tempfile.mkdtemp(prefix="tenin-weeks-live-"))
        prop_dir, upl_dir = _model_dirs(state)
        with (
            LineRecorder() as line,
            demo_environment(state, self.opts.against_services, line.base_url) as base,
        ):
            env = {
                **base,
                "TENIN_MODEL_DIR": str(prop_dir),
                "TENIN_UPLIFT_DIR": str(upl_dir),
                "TENIN_POLICY": "uplift",
                "TENIN_POLICY_EPSILON": str(self.opts.epsilon),
            }
            line.token = env["LINE_CHANNEL_ACCESS_TOKEN"]
            tenin(env, "migrate")
            services = ServiceSet(env, state / "logs", ports_of(env))
            try:
                driver = self._driver(env, services, line)
                services.start()
                rows = self._weeks(env, driver(), prop_dir, upl_dir, state)
            finally:
                services.stop()
        if os.environ.get("TENIN_DEMO_KEEP_STATE"):
            self.say(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
        return rows

    def _driver(
        self, env: dict[str, str], services: ServiceSet, line: LineRecorder
    ) -> Callable[[], WeekDriver]:
        keys = {"marketer": create_key(env, "marketer"), "members": create_key(env, "members")}
        tills = {store: create_key(env, "pos", store) for store in STORES}

        def build() -> WeekDriver:  # after the services are up
            marketer = MarketerClient(
                services.url("campaign_engine"),
                services.url("redemption_tracker"),
                keys["marketer"],
            )
            body = campaign_body(self.opts.common.holdout_pct)
            body["caps"] = {"per_customer_per_day": None, "per_customer_total": None}  # weeks long
            created = marketer.create_campaign(body)
            if created.status_code != 201:
                raise RuntimeError(f"creating the campaign failed: {created.text[:500]}")
            activated = marketer.transition(created.json()["campaign_id"], "activate")
            if activated.status_code != 200:
                raise RuntimeError(f"activating the campaign failed: {activated.text[:500]}")
            population = Population.generate(self.opts.customers, self.opts.common.seed)
            return WeekDriver(
                population=population,
                shop=ShoppingSimulator(population, self.opts.common.seed),
                webhooks=LineWebhookClient(services.url("chat_agent"), env["LINE_CHANNEL_SECRET"]),
                tills={
                    s: PosClient(services.url("redemption_tracker"), k, s) for s, k in tills.items()
                },
                line=line,
                offers=[offer_features(o) for o in OFFERS],
                valid_hours=[int(o["valid_hours"]) for o in OFFERS],
                secret_key=env["TENIN_SECRET_KEY"],
                seed=self.opts.common.seed,
                record=WeekRecord(days=7 * self.opts.weeks),
                members=MemberSite(services.url("chat_agent"), keys["members"]),
            )

        return build

    def _day(self, driver: WeekDriver, day: int) -> None:
        """One simulated day, started on the paced wall clock."""
        # Paced from the previous day's start: a late day delays the next, never all the rest.
        due = self.day_starts[-1] + self.opts.seconds_per_day if self.day_starts else None
        if due is not None and time.time() < due:
            time.sleep(due - time.time())
        elif due is not None:
            self.overruns += 1
        self.day_starts.append(time.time())
        driver.run_day(day)

    def _weeks(
        self, env: dict[str, str], driver: WeekDriver, prop_dir: Path, upl_dir: Path, state: Path
    ) -> list[WeekRow]:
        opts = self.opts.common
        world = CampaignWorld.for_campaign(opts.eval_requests, opts.seed + 50_000)
        prop = PropensityScorer(prop_dir, reload_interval_s=0.0)
        upl: UpliftScorer | None = None
        rows = [WeekRow(0, *served_policy(world, opts, prop, upl))]
        self.say(
            f"week 0: {rows[0].served}: {rows[0].per_1000:,.0f} per 1,000 (oracle {rows[0].oracle_per_1000:,.0f})"
        )
        db = make_engine(env["DATABASE_URL"])
        try:
            for week in range(self.opts.weeks):
                t0 = time.perf_counter()
                for day in range(7 * week, 7 * week + 7):
                    self._day(driver, day)
                self.say(
                    f"week {week + 1}: driven in {time.perf_counter() - t0:.0f}s "
                    f"({sum(driver.record.issued_per_day[-7:])} coupons, "
                    f"{sum(driver.record.redeemed_per_day[-7:])} redeemed, "
                    f"{self.overruns} late days so far; chat {driver.record.chat_seconds:.0f}s, "
                    f"POS {driver.record.pos_seconds:.0f}s in all)"
                )
                _settled(db, self.say)
                report = self._retrain(db, prop_dir, upl_dir, week)
                row, upl = after_week(week + 1, world, opts, prop, (upl_dir, upl), report, state)
                rows.append(row)
                write_outputs(rows, opts.out_dir.resolve())  # a cut-short run keeps its weeks
                self.say(
                    f"week {week + 1}: {row.served}: {row.per_1000:,.0f} per 1,000 requests "
                    f"(oracle {row.oracle_per_1000:,.0f}); week wall time "
                    f"{time.perf_counter() - t0:.0f}s"
                )
        finally:
            db.dispose()
        return rows

    def _retrain(self, db: Engine, prop_dir: Path, upl_dir: Path, week: int) -> KindReport:
        """The loop on everything logged so far whose compressed spend window has closed."""
        per_day = self.opts.seconds_per_day
        since = datetime.fromtimestamp(self.day_starts[0], UTC)
        closed = time.time() - WINDOW_DAYS * per_day  # the week's sales are all in by now
        place = Place(
            model_dirs={"propensity": prop_dir, "uplift": upl_dir},
            policy=PolicyConfig(mode="epsilon_greedy", epsilon=self.opts.epsilon),
            margins={k: promotion_margin({}, k) for k in ("propensity", "uplift")},
            schema=_engine_schema(db),
            spend_window=timedelta(seconds=WINDOW_DAYS * per_day),
            # Past every coupon's expiry, which rounds up to the hour (decisions/record.py):
            # the join waits that long for every decision, coupon or not (modeling/outcomes.py).
            now=datetime.now(UTC) + EXPIRY + timedelta(hours=1, minutes=1),
        )
        return retrain_kind(
            db,
            place,
            "uplift",
            since,
            datetime.fromtimestamp(closed, UTC),
            actor="weeks-demo-live",
            seed=self.opts.common.seed + week,
            say=lambda msg: self.say(f"week {week + 1}: {msg}"),
        )


def live_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`tenin demo --weeks N --retrain --live`: run through the services, then report."""
    opts = options_from(parser, args)
    if args.seconds_per_day <= 0:
        parser.error("--seconds-per-day must be positive")
    live = LiveOptions(
        weeks=args.weeks,
        customers=args.customers,
        seconds_per_day=args.seconds_per_day,
        epsilon=opts.epsilon,
        against_services=args.against_services,
        common=opts,
    )
    rows = LiveWeeks(live, say=lambda msg: print(msg, flush=True)).run()
    return report_weeks(rows, args.out)
