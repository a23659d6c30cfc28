"""Orchestrates the demo: environment, services, campaign, the simulated week, the report."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shared.bus import broker_from_settings
from shared.config import Settings
from shared.model.features import OfferFeatures
from shared.model.simulator import STORES, Population, ShoppingSimulator
from tenin.clients import LineWebhookClient, MarketerClient, PosClient
from tenin.demo.linking import MemberSite
from tenin.demo.observer import DecisionObserver
from tenin.demo.simulation import WeekDriver, WeekRecord
from tenin.demo.stack import create_key, demo_environment, ports_of, tenin
from tenin.line_recorder import LineRecorder
from tenin.processes import CONSOLE, SERVICES, ServiceSet

# The campaign the demo's marketer runs: four offers a convenience store would make.
OFFERS: list[dict[str, Any]] = [
    {
        "title": "¥50 off any onigiri",
        "discount": {"type": "amount", "value": 50},
        "applies_to": {"categories": ["onigiri"]},
        "min_basket": 300,
        "valid_hours": 72,
    },
    {
        "title": "10% off bento",
        "discount": {"type": "percent", "value": 10},
        "applies_to": {"categories": ["bento"]},
        "min_basket": 500,
        "valid_hours": 72,
    },
    {
        "title": "A free hot coffee S",
        "discount": {"type": "free_item", "value": 120},
        "applies_to": {"categories": ["coffee"]},
        "min_basket": 0,
        "valid_hours": 48,
    },
    {
        "title": "¥30 off drinks",
        "discount": {"type": "amount", "value": 30},
        "applies_to": {"categories": ["drinks"]},
        "min_basket": 200,
        "valid_hours": 72,
    },
]


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 300
    days: int = 7
    seed: int = 7
    holdout_pct: float = 20.0
    out_dir: Path = Path(".")
    against_services: bool = False
    progress: bool = True


def offer_features(offer: dict[str, Any]) -> OfferFeatures:
    """The simulator's view of an offer the campaign defines."""
    return OfferFeatures(
        discount_type=offer["discount"]["type"],
        discount_value=float(offer["discount"]["value"]),
        category=offer["applies_to"]["categories"][0],
        min_basket=float(offer["min_basket"]),
    )


def campaign_body(holdout_pct: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": "Ten-chan's autumn week",
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "offers": OFFERS,
        "budget": {
            "max_coupons": 100_000,
            "max_redemptions": 100_000,
            "max_discount_total": 5_000_000,
        },
        # Caps count real days, and the demo compresses a simulated week into minutes of real
        # time: a daily cap would stop every customer after their first coupon.
        "caps": {"per_customer_per_day": None, "per_customer_total": 3},
        "holdout_pct": holdout_pct,
        "revenue_share": {"pct": 10.0, "basis": "attributed"},
        "per_call_fee": 2,
        # Pacing follows the real clock too: a simulated month in minutes would be held back.
        "pacing": "asap",
    }


def print_console_url(url: str, marketer_key: str, state_dir: Path) -> None:
    """Where the marketer console runs while the demo does; its key goes to a private file,
    never to the terminal or a log (docs/console.md)."""
    key_file = state_dir / "console-marketer-key.txt"
    key_file.touch(mode=0o600)
    key_file.write_text(marketer_key + "\n")
    print(f"console: {url}/  (sign in with the marketer key in {key_file})")


def run_demo(options: DemoOptions) -> int:
    """Run the whole demo; prints a summary and writes report.html. Returns an exit code."""
    started = time.perf_counter()
    state_dir = Path(tempfile.mkdtemp(prefix="tenin-demo-"))
    out_dir = options.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"tenin demo: {options.customers} customers, {options.days} days, seed {options.seed}, "
        f"{'real services' if options.against_services else 'embedded default'}; state in {state_dir}"
    )
    with (
        LineRecorder() as line,
        demo_environment(state_dir, options.against_services, line.base_url) as env,
    ):
        line.token = env["LINE_CHANNEL_ACCESS_TOKEN"]
        tenin(env, "migrate")
        marketer_key = create_key(env, "marketer")
        members_key = create_key(env, "members")
        store_keys = {store: create_key(env, "pos", store) for store in STORES}
        services = ServiceSet(env, state_dir / "logs", ports_of(env))
        try:
            services.start((*SERVICES, CONSOLE))
            print(
                f"services up after {time.perf_counter() - started:.1f}s (logs in {state_dir / 'logs'})"
            )
            print_console_url(services.url(CONSOLE), marketer_key, state_dir)
            keys = (marketer_key, members_key)
            result = _run_week(options, env, services, line, keys, store_keys, out_dir)
        finally:
            services.stop()
    print(f"wall time {time.perf_counter() - started:.1f}s")
    if result == 0:
        shutil.rmtree(state_dir, ignore_errors=True)
    return result


def _run_week(
    options: DemoOptions,
    env: dict[str, str],
    services: ServiceSet,
    line: LineRecorder,
    keys: tuple[str, str],
    store_keys: dict[str, str],
    out_dir: Path,
) -> int:
    from tenin.demo.summary import print_summary, settle_report, write_report

    marketer_key, members_key = keys
    marketer = MarketerClient(
        services.url("campaign_engine"), services.url("redemption_tracker"), marketer_key
    )
    created = marketer.create_campaign(campaign_body(options.holdout_pct))
    if created.status_code != 201:
        raise RuntimeError(
            f"creating the campaign failed: {created.status_code} {created.text[:500]}"
        )
    campaign_id = created.json()["campaign_id"]
    activated = marketer.transition(campaign_id, "activate")
    if activated.status_code != 200:
        raise RuntimeError(
            f"activating the campaign failed: {activated.status_code} {activated.text[:500]}"
        )

    population = Population.generate(options.customers, options.seed)
    driver = WeekDriver(
        population=population,
        shop=ShoppingSimulator(population, options.seed),
        webhooks=LineWebhookClient(services.url("chat_agent"), env["LINE_CHANNEL_SECRET"]),
        tills={
            s: PosClient(services.url("redemption_tracker"), k, s) for s, k in store_keys.items()
        },
        line=line,
        offers=[offer_features(o) for o in OFFERS],
        valid_hours=[int(o["valid_hours"]) for o in OFFERS],
        secret_key=env["TENIN_SECRET_KEY"],
        seed=options.seed,
        record=WeekRecord(days=options.days),
        members=MemberSite(services.url("chat_agent"), members_key),
    )
    observer = DecisionObserver(broker_from_settings(Settings.from_env(env))).start()
    observer.ready.wait(timeout=30)
    days = tqdm(
        range(options.days), desc="simulated days", unit="day", disable=not options.progress
    )
    for day in days:
        issued, redeemed = driver.run_day(day)
        days.set_postfix(
            issued=sum(driver.record.issued_per_day), redeemed=sum(driver.record.redeemed_per_day)
        )
    report = settle_report(marketer, campaign_id, driver.record)
    observer.stop()
    path = write_report(out_dir / "report.html", report, driver.record, observer.scores)
    print_summary(report, driver.record, path)
    return 0
