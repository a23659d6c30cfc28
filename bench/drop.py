"""A campaign drop to N simulated followers on the real services (docs/interfaces.md
§ Campaign drops): decisions/s, pushes/s, wall time, peak memory and CPU per unit of work
of each process (CPU seconds from /proc over the drop: per follower for campaign_engine,
per push for the chat_agent workers and for this process, which hosts the recording LINE
server; less noisy than wall time on a shared machine).

One `tenin worker campaign_engine` and one `tenin worker chat_agent` (subprocesses, a
database and a topic namespace of their own), the recording LINE server limiting pushes
at --line-rate (2,000/s, the channel's rate; tenin is told the same through
LINE_PUSH_RATE_PER_S). The anchor is that rate: pushes/s is printed as a ratio of it
(1.0 = limited only by the channel). Decisions are timed from the drop's creation to the
last page decided (the runner's `paged_at`, by the database's clock); pushes from the first
push to the last, and (`drain_pushes_per_s`, the chat side alone) over the pushes after the
last decision. Goal (issue 12): 100,000 decided in
≤ 60 s with one worker process.

The decision and push times are wall-clock times (the database's, the recording server's),
and the drop's own span is `perf_counter`'s. A VM paused for a snapshot steps the wall
clock but not the other: `clock_jump_s` is how far they drifted apart over the drop, and a
run whose clocks drifted more than CLOCK_JUMP_LIMIT_S is printed but left out of the
medians (its decide_s and pushes/s are not what happened).

Run: eval "$(scripts/services up)"; python bench/drop.py [--followers 100000] [--quick]
[--chat-workers N] (N chat_agent processes share the channel's bucket through Redis)
[--relay thread|process] (TENIN_OUTBOX_RELAY; process: a relay process per service, whose
CPU counts as its service's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from bench.server_cpu import server_cpu_seconds, used_since  # noqa: E402
from services.campaign_engine.models import Drop  # noqa: E402
from tests.support.drop_stack import drop_stack  # noqa: E402

CLOCK_JUMP_LIMIT_S = 0.5  # the wall clock and perf_counter drifted apart: a VM pause


def _services() -> dict[str, str]:
    names = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        sys.exit(f'set {", ".join(missing)} (eval "$(scripts/services up)")')
    return {n: os.environ[n] for n in names}


def _get(client: Any, headers: dict[str, str], path: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(path, headers=headers).get_json()
    return answer


def run_drop(
    followers: int, line_rate: float, timeout_s: float, chat_workers: int = 1, relay: str = "thread"
) -> dict[str, float]:
    """One drop; returns its figures."""
    with drop_stack(
        _services(), push_rate_per_s=line_rate, line_rate=line_rate, outbox_relay=relay
    ) as stack:
        seeded = time.perf_counter()
        stack.seed_followers(followers)
        seed_s = time.perf_counter() - seeded
        campaign_id = stack.active_campaign()
        client, headers = stack.marketer()
        stack.start("campaign_engine")
        for n in range(chat_workers):
            stack.start("chat_agent", "chat_agent" if n == 0 else f"chat_agent_{n + 1}")
        if relay == "process":  # one relay process per service (its CPU counts as the service's)
            stack.start("campaign_engine", command="relay")
            stack.start("chat_agent", command="relay")
        time.sleep(8)  # both workers up (model loaded, consumers joined) before the clock
        stack.sample_peaks()
        cpu_at_start = stack.cpu_s()
        own_cpu_at_start = time.process_time()
        servers_at_start = server_cpu_seconds()
        started = time.perf_counter()
        wall_minus_perf = time.time() - started
        answer = client.post(
            f"/v1/campaigns/{campaign_id}/drops", json={"quiet_hours": None}, headers=headers
        )
        drop_id = answer.get_json()["drop_id"]
        path = f"/v1/campaigns/{campaign_id}/drops/{drop_id}"
        progress: dict[str, Any] = {}
        # Polled twice a second, as a console would: the progress is a few tally rows
        # (drop_tallies.py; joining the members with the decision log had cost ~145 ms of
        # PostgreSQL a read at 100,000 followers).
        while time.perf_counter() - started < timeout_s:
            time.sleep(0.5)
            stack.sample_peaks()
            progress = _get(client, headers, path)
            if progress["status"] == "done":
                break
        wall = time.perf_counter() - started
        # All decided when the runner found no follower left (each page is decided in its
        # own transaction), by the database's clock.
        paged_s = _paged_after(stack, drop_id)
        decided_at = started + paged_s if paged_s is not None else None
        pushes = stack.push_times()
        push_span = (pushes[-1] - pushes[0]) if len(pushes) > 1 else float("nan")
        # The chat side alone: pushes after the last decision, over the time they took.
        offset = time.time() - time.perf_counter()
        clock_jump_s = offset - wall_minus_perf
        after = [t for t in pushes if decided_at is not None and t >= decided_at + offset]
        drain_span = (after[-1] - after[0]) if len(after) > 1 else float("nan")
        stack.sample_peaks()
        own_cpu = time.process_time() - own_cpu_at_start
        by_server = used_since(servers_at_start)
        servers = sum(by_server.values())
        cpu = {k: v - cpu_at_start.get(k, 0.0) for k, v in stack.cpu_s().items()}
        chat_cpu = sum(v for k, v in cpu.items() if k.startswith("chat_agent"))
        engine_cpu = sum(v for k, v in cpu.items() if k.startswith("campaign_engine"))
        pushed = max(1, len(pushes))
        return {
            "followers": followers,
            "seed_s": seed_s,
            "decided": progress.get("decided", 0),
            "pushed": progress.get("pushed", 0),
            "decide_s": (decided_at or time.perf_counter()) - started,
            "wall_s": wall,
            "pushes_per_s": (len(pushes) - 1) / push_span if len(pushes) > 1 else 0.0,
            "drain_pushes_per_s": (len(after) - 1) / drain_span if len(after) > 1 else 0.0,
            "rate_limited": stack.line.rate_limited,
            "duplicates": sum(n - 1 for n in stack.pushes_per_user().values()),
            "done": progress.get("status") == "done",
            **{f"peak_mb_{k}": v / 1024 for k, v in stack.peak_kb.items()},
            "peak_mb_bench": _own_peak_mb(),
            # CPU per unit of work (from /proc; the machine's load does not inflate it much).
            "cpu_ms_per_follower_campaign_engine": engine_cpu
            / max(1, progress.get("decided", 0))
            * 1e3,
            "cpu_ms_per_push_chat_agent": chat_cpu / pushed * 1e3,
            # This process: the recording LINE server (its HTTP handling) and the progress
            # polls. LINE's own servers are not on the machine in production, but here they
            # share its two cores with tenin.
            "cpu_ms_per_push_line_recorder": own_cpu / pushed * 1e3,
            **{f"cpu_s_{name}": seconds for name, seconds in by_server.items()},
            **{f"cpu_s_{name}": seconds for name, seconds in sorted(cpu.items())},
            "cpu_s_line_recorder": own_cpu,
            # Every process's CPU over the drop: two cores need at least half of it in wall time.
            "cpu_s_all": sum(cpu.values()) + own_cpu + servers,
            "clock_jump_s": clock_jump_s,
        }


def _paged_after(stack: Any, drop_id: str) -> float | None:
    """Seconds from the drop's creation to the runner's last page (None: not paged)."""
    with stack.sessions() as session:
        row = session.execute(
            select(Drop.created_at, Drop.paged_at).where(Drop.drop_id == drop_id)
        ).one()
    return None if row.paged_at is None else (row.paged_at - row.created_at).total_seconds()


def _clock_jumped(run: dict[str, float]) -> bool:
    """Whether the run's wall clock stepped (a VM pause): its times are not what happened."""
    return abs(run["clock_jump_s"]) > CLOCK_JUMP_LIMIT_S


def _own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 followers, one run")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--line-rate", type=float, default=2000.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--chat-workers", type=int, default=1, help="chat_agent worker processes (one bucket)"
    )
    parser.add_argument(
        "--relay",
        choices=["thread", "process"],
        default="thread",
        help="where the outbox relays run (TENIN_OUTBOX_RELAY; process: one per service)",
    )
    args = parser.parse_args()
    followers = 5_000 if args.quick else args.followers
    runs = [
        run_drop(followers, args.line_rate, args.timeout, args.chat_workers, args.relay)
        for _ in range(args.runs)
    ]
    print(f"drop to {followers:,} followers, channel limited at {args.line_rate:,.0f} pushes/s")
    for n, r in enumerate(runs, 1):
        jumped = _clock_jumped(r)
        print(
            f"  run {n}: decided in {r['decide_s']:,.1f} s, {r['pushes_per_s']:,.0f} pushes/s, "
            f"{r['drain_pushes_per_s']:,.0f}/s once deciding ended"
            + (f"; the wall clock jumped {r['clock_jump_s']:+.1f} s: left out" if jumped else "")
        )
    kept = [r for r in runs if not _clock_jumped(r)]
    if not kept:
        print("  every run's wall clock jumped: the medians below are of all of them")
    runs = kept or runs
    for key in runs[0]:
        values = [float(r[key]) for r in runs]
        print(f"  {key:>22}: {statistics.median(values):,.2f}")
    decisions_per_s = statistics.median(float(r["decided"]) / r["decide_s"] for r in runs)
    pushes_per_s = statistics.median(float(r["pushes_per_s"]) for r in runs)
    print(f"  decisions/s (median)  : {decisions_per_s:,.0f}")
    print(
        f"  pushes/s (median)     : {pushes_per_s:,.0f}  = "
        f"{pushes_per_s / args.line_rate:.2f} x the channel's rate (the anchor)"
    )
    cores = os.cpu_count() or 1
    floor = statistics.median(float(r["cpu_s_all"]) for r in runs) / cores
    print(
        f"  CPU of every process (tenin, servers, LINE recorder) over {cores} cores: the drop "
        f"cannot take less than {floor:,.0f} s of wall time on this machine"
    )


if __name__ == "__main__":
    main()
