"""Fuzz every tenin HTTP API with schemathesis (docs/architecture.md § Fuzzing).

Starts the three apps live (tests/fuzz/stack.py), runs `schemathesis run` against each
one's `/openapi.json` with every phase (examples, coverage, fuzzing, stateful), positive
and negative data and every check, then prints the counts and exits non-zero on any
failure. Under CI the seed is fixed and the run is sized for a few minutes; `--release`
runs many more cases per operation.

    python -m tests.fuzz.run [--seed N] [--max-examples N] [--release] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from shared.logging import configure_logging
from tests.fuzz.hooks import SECRET_VARIABLE
from tests.fuzz.stack import LiveStack, live_stack

CI_SEED = 20260101
CI_MAX_EXAMPLES = 40
RELEASE_MAX_EXAMPLES = 500
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# The key each service is fuzzed with: admin passes every role check, so every route is
# reached; ignored_auth still checks that no key gives 401.
SERVICE_ROLE = {"campaign_engine": "admin", "chat_agent": "admin", "redemption_tracker": "admin"}


@dataclass(frozen=True)
class ServiceResult:
    service: str
    operations: int
    cases: int
    failures: int
    errors: int
    exit_code: int
    seconds: float


def schemathesis_command(
    url: str, key: str, seed: int, max_examples: int, report: Path
) -> list[str]:
    """The CLI call for one service."""
    return [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--phases",
        PHASES,
        "--mode",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        "--generation-database",
        "none",
        # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11
        # does not make thread-safe ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {key}",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]


def counts(report: Path) -> dict[str, int]:
    """Operations tested, cases generated, failures and errors from a schemathesis JSON report."""
    document: dict[str, Any] = json.loads(report.read_text())
    operations = document.get("operations") or {}
    cases = document.get("test_cases") or {}
    return {
        "operations": int(operations.get("tested", 0)),
        "cases": int(cases.get("generated", 0)),
        "failures": sum(int(group["count"]) for group in document.get("failures", [])),
        "errors": sum(int(group["count"]) for group in document.get("errors", [])),
    }


def fuzz_service(
    service: str, url: str, stack: LiveStack, seed: int, max_examples: int, out: Path
) -> ServiceResult:
    report = out / f"{service}.json"
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = "tests.fuzz.hooks"
    env[SECRET_VARIABLE] = stack.line_channel_secret
    started = time.monotonic()
    command = schemathesis_command(
        url, stack.keys[SERVICE_ROLE[service]], seed, max_examples, report
    )
    with open(out / f"{service}.log", "w") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    found = (
        counts(report)
        if report.exists()
        else {"operations": 0, "cases": 0, "failures": 0, "errors": 1}
    )
    return ServiceResult(
        service, exit_code=done.returncode, seconds=time.monotonic() - started, **found
    )


def _log_apps_to(path: Path) -> TextIO:
    """The apps' log records (tracebacks of any 500 among them) go to a file, not the console."""
    configure_logging("fuzz", "WARNING", json_output=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    stream = open(path, "w")  # noqa: SIM115 - open for the whole run, closed by main
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=CI_SEED if os.environ.get("CI") else None)
    parser.add_argument("--max-examples", type=int, default=CI_MAX_EXAMPLES)
    parser.add_argument(
        "--release", action="store_true", help=f"{RELEASE_MAX_EXAMPLES} cases per operation"
    )
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument(
        "--service", action="append", choices=sorted(SERVICE_ROLE), help="only these (repeatable)"
    )
    parser.add_argument(
        "--serve", action="store_true", help="start the apps, print URLs and keys, fuzz nothing"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    max_examples = RELEASE_MAX_EXAMPLES if args.release else args.max_examples
    out = args.report_dir or Path(tempfile.mkdtemp(prefix="tenin-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    server = os.environ.get("DATABASE_URL")
    if not server:
        print("fuzz: DATABASE_URL (a PostgreSQL server) is required", file=sys.stderr)
        return 2
    app_log = _log_apps_to(out / "apps.log")
    print(f"fuzz: seed {seed}, up to {max_examples} cases per operation, reports in {out}")
    with live_stack(server, out / "data") as stack:
        if args.serve:
            print(json.dumps(stack.__dict__, indent=2, default=dict), flush=True)
            threading.Event().wait()
        results = [
            fuzz_service(service, url, stack, seed, max_examples, out)
            for service, url in stack.urls.items()
            if args.service is None or service in args.service
        ]
    for r in results:
        print(
            f"  {r.service:<20} {r.operations:>3} operations {r.cases:>6} cases "
            f"{r.failures:>3} failures {r.errors:>3} errors  ({r.seconds:.0f} s, exit {r.exit_code})"
        )
    app_log.close()
    (out / "summary.json").write_text(json.dumps([r.__dict__ for r in results], indent=2))
    failed = [r.service for r in results if r.exit_code or r.failures or r.errors]
    if failed:
        print(f"fuzz: failures in {', '.join(failed)}; see {out}/<service>.log", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
