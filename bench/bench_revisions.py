"""This checkout's worker against an earlier revision's, in paired rounds.

Does a change cost the plain path anything? Each round drains the same number of
pre-enqueued no-op jobs twice with one ``naq worker -c C --burst`` process: once running
the earlier revision's naq (``--base``, extracted with ``git archive`` into a temporary
directory) and once this checkout's, in alternating order; the queue has no limits and
the worker no middleware, lifespan or callbacks. The ratio of each round is this
checkout's rate over the base's (first start to last end, from the worker's own log
line), and of the worker processes' CPU seconds. Jobs are enqueued by this checkout's naq
(the job format is the same).

    .venv/bin/python bench/bench_revisions.py --base c1c7039 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

from bench.common import (  # noqa: E402
    REPO_ROOT,
    Row,
    embedded_server,
    install_stop_handlers,
    naq_drain,
    print_table,
    reproduce_command,
    save_results,
)

NAME = "revisions"
TITLE = "This checkout's worker vs an earlier revision's (paired rounds)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", required=True, help="the earlier revision (a commit, tag, branch)")
    p.add_argument("--rounds", type=int, default=5, help="paired rounds (5)")
    p.add_argument("--n", type=int, default=20_000, help="jobs per drain (20,000)")
    p.add_argument("-c", "--concurrency", type=int, default=100, help="worker concurrency (100)")
    p.add_argument("--quick", action="store_true", help="n/10, 2 rounds; prints, saves nothing")
    return p.parse_args(argv)


def extract(revision: str, into: Path) -> str:
    """Write ``revision``'s tree into ``into``; returns its short commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.run(
        ["git", "archive", commit], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


async def rounds(url: str, base_tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    import naq

    nc = await nats.connect(url)
    js = nc.jetstream()
    trees = {"base": str(base_tree), "head": str(REPO_ROOT)}
    rates: dict[str, list[float]] = {"base": [], "head": []}
    cpu: dict[str, list[float]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as workdir:
        for i in range(args.rounds):
            order = ["base", "head"] if i % 2 == 0 else ["head", "base"]
            for which in order:
                settings = naq.get_settings().replace(nats_url=url, prefix=f"rev{i}{which}")
                out = await naq_drain(
                    js,
                    settings,
                    "bench",
                    "bench.tasks:async_noop",
                    args.n,
                    workdir=Path(workdir),
                    concurrency=args.concurrency,
                    worker_mode="cli",
                    env={"PYTHONPATH": trees[which]},
                )
                busy = out["busy_seconds"] or out["seconds"]
                rates[which].append(args.n / busy)
                cpu[which].append(out["cpu_seconds"])
                print(f"round {i + 1} {which}: {args.n / busy:,.0f} jobs/s, "
                      f"{out['cpu_seconds']:.2f} s CPU")  # fmt: skip
    await nc.close()
    return {"rates": rates, "cpu": cpu}


def main(argv: list[str]) -> int:
    install_stop_handlers()
    args = parse_args(argv)
    if args.quick:
        args.n, args.rounds = args.n // 10, 2
    with tempfile.TemporaryDirectory() as tree, embedded_server() as server:
        base = extract(args.base, Path(tree))
        result = asyncio.run(rounds(server.url, Path(tree), args))
    rates, cpu = result["rates"], result["cpu"]
    rate_ratios = [h / b for h, b in zip(rates["head"], rates["base"], strict=True)]
    cpu_ratios = [h / b for h, b in zip(cpu["head"], cpu["base"], strict=True)]
    rows = [
        Row(
            name=f"{which} ({base if which == 'base' else 'this checkout'}): naq worker "
            f"-c {args.concurrency} async drain, median of {args.rounds}",
            count=args.n,
            seconds=args.n / statistics.median(rates[which]),
            unit="jobs/s",
            baseline=None if which == "base" else rows_base_name(base, args),
        )
        for which in ("base", "head")
    ]
    rows[1].ratio = statistics.median(rate_ratios)
    print_table(TITLE, rows)
    each = ", ".join(f"{r:.3f}" for r in rate_ratios)
    each_cpu = ", ".join(f"{r:.3f}" for r in cpu_ratios)
    notes = [
        f"Paired rounds, this checkout / {base}: drain rate = "
        f"{statistics.median(rate_ratios):.3f}× median of {args.rounds} ({each}).",
        f"Paired rounds, this checkout / {base}: the worker's CPU seconds (start-up included) = "
        f"{statistics.median(cpu_ratios):.3f}× median of {args.rounds} ({each_cpu}).",
    ]
    for note in notes:
        print(note)
    if args.quick:
        return 0
    save_results(
        NAME,
        title=TITLE,
        command=reproduce_command("bench_revisions.py", argv),
        rows=rows,
        params=vars(args) | {"base_commit": base},
        notes=notes,
    )
    return 0


def rows_base_name(base: str, args: argparse.Namespace) -> str:
    return f"base ({base}): naq worker -c {args.concurrency} async drain, median of {args.rounds}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
