"""`python -m bench` (`make bench`): run the scenarios against the project and its peer, nginx + nchan,
print the results and the project / nchan ratios, write the JSON lines. `python -m bench rollover`:
a rolling deploy of one of two replicas, paced drain against all at once (`rollover.py`)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import ratios, report, rollover
from .runner import SYSTEMS, Options, run_scenario
from .scenarios import SCENARIOS, Scenario, by_name

RESULTS = Path(__file__).resolve().parent / "results"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    names = [s.name for s in SCENARIOS]
    parser.add_argument("--scenario", action="append", choices=names, help="run only this one (repeatable)")
    parser.add_argument(
        "--system",
        action="append",
        choices=SYSTEMS,
        help="run only against this one (repeatable; default: both, each scenario on each in turn)",
    )
    parser.add_argument("--direct", action="store_true", help="clients connect to the service, not nginx")
    parser.add_argument(
        "--upstream",
        choices=["unix", "tcp"],
        default="unix",
        help="how nginx reaches the service: a Unix socket (devstack's local default), or TCP (compose's)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        metavar="N",
        help="N SSE service processes behind the one nginx in every scenario run "
        "(default: 1, and 2 for fanout-1k-2rep); a scenario on N > 1 is named NAME-Nrep",
    )
    parser.add_argument("--quick", action="store_true", help="10x fewer clients, 2 s runs: a smoke test")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra SSE_* env")
    parser.add_argument("--connect-concurrency", type=int, default=256, help="connects in flight at once")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="budget for all scenarios")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the .jsonl goes")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs and say where")
    parser.add_argument("--check", action="store_true", help="exit 1 if the project misses a target")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        choices=["service", "client", "publisher"],
        help="sample this process with py-spy during the run; top self time goes in the results",
    )
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native: C frames too")
    options = parser.parse_args(argv)
    for pair in options.env:
        if "=" not in pair or not pair.startswith("SSE_"):
            parser.error(f"--env {pair!r}: expected SSE_NAME=VALUE")
    if options.replicas is not None and options.replicas < 1:
        parser.error("--replicas: at least 1")
    if options.direct and (options.replicas or 1) > 1:
        parser.error("--direct runs one SSE process: several need nginx in front")
    return options


def _selected(args: argparse.Namespace) -> list[Scenario]:
    scenarios = [by_name(name) for name in args.scenario] if args.scenario else list(SCENARIOS)
    if args.replicas is not None:
        # fanout-1k-2rep is fanout-1k on 2 replicas: the same scenario runs once.
        scenarios = list(dict.fromkeys(s.with_replicas(args.replicas) for s in scenarios))
    if args.direct:
        left_out = [s.name for s in scenarios if s.replicas > 1]
        if left_out:
            print(f"bench: --direct leaves out {', '.join(left_out)} (needs nginx)", file=sys.stderr)
        scenarios = [s for s in scenarios if s.replicas == 1]
    return [s.quick() for s in scenarios] if args.quick else scenarios


def main(argv: list[str]) -> int:
    if argv[:1] == ["rollover"]:
        return rollover.main(argv[1:])
    args = _parse(argv)
    scenarios = _selected(args)
    systems = tuple(args.system) if args.system else SYSTEMS
    run_root = Path(tempfile.mkdtemp(prefix="bench-"))
    stamp = args.results_dir / time.strftime("%Y%m%dT%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    options = Options(
        run_root=run_root,
        direct=args.direct,
        sse_env=dict(pair.split("=", 1) for pair in args.env),
        unix_upstream=args.upstream == "unix",
        connect_concurrency=args.connect_concurrency,
        profile=tuple(args.profile),
        profile_prefix=stamp,
        profile_native=args.profile_native,
    )
    info = {
        **report.machine(),
        "direct": args.direct,
        "upstream": "-" if args.direct else args.upstream,
        "quick": args.quick,
        "sse_env": options.sse_env,
        "systems": systems,
    }
    deadline = time.monotonic() + args.max_minutes * 60
    results = []
    for scenario in scenarios:
        for system in systems:
            if system == "nchan" and not scenario.has_peer:
                continue
            left = deadline - time.monotonic()
            if left < 30:
                results.append(_skipped(scenario, system))
                continue
            print(
                f"bench: {scenario.name} on {system} ({scenario.clients} clients)...",
                file=sys.stderr,
                flush=True,
            )
            results.append(run_scenario(scenario, system, options, left))
    print(report.table(results, info))
    if "nchan" in systems and "project" in systems:
        print("\n" + ratios.table(results))
    if args.profile:
        print(report.profiles(results))
    path = report.write_jsonl(stamp.with_suffix(".jsonl"), info, results)
    print(f"\nraw results: {path}")
    errors = [r for r in results if "error" in r]
    if args.keep_logs or errors:
        print(f"server and client logs: {run_root}")
    else:
        shutil.rmtree(run_root, ignore_errors=True)
    if errors:
        return 2
    # The targets are the project's; the peer's rows show where nchan stands against them.
    project = [r for r in results if r["system"] == "project"]
    return 1 if args.check and not all(r["passed"] for r in project) else 0


def _skipped(scenario: Scenario, system: str) -> dict[str, object]:
    return {
        "system": system,
        "scenario": scenario.name,
        "kind": "skipped",
        "clients": scenario.clients,
        "replicas": scenario.replicas,
        "target": scenario.target.describe(),
        "error": "out of time budget",
        "passed": False,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
