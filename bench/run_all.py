"""Run every bench/bench_*.py in turn, then regenerate bench/RESULTS.md.

Usage::

    .venv/bin/python bench/run_all.py            # what `make bench` runs
    .venv/bin/python bench/run_all.py --quick    # smoke run of every benchmark, writes nothing

Arguments are passed on to every benchmark script. Exits non-zero if any benchmark failed.

Among them (every bench/bench_*.py is picked up by name):

- bench_core.py: naq enqueue/drain against raw nats-py and a lean loop making naq's writes;
- bench_history.py: list_jobs latency with 1,000 and with 100,000 ended jobs in the history;
- bench_latency.py: enqueue -> start latency at a steady 20 jobs/s (raw nats-py floor beside it),
  worker RSS idle and under load, drain scaling over 1, 2 and 4 worker processes;
- bench_peers.py: the same workloads on RQ and arq against a throwaway redis-server; the first run
  installs what it lacks (`apt-get install -y redis-server` as root, `pip install rq arq redis`).
- bench_pool.py: the process pool: a supervisor's cost, no-op drains over one and two
  processes, CPU-bound sync jobs in two processes against two threads of one;
- bench_scheduler.py: how late the scheduler fires runs after their due time;
- bench_tui.py: the TUI's open time, key-press repaint and memory over a large history.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench.common import REPO_ROOT, install_stop_handlers, write_results_md  # noqa: E402


def run_one(script: Path, argv: list[str]) -> int:
    """Run one benchmark in its own interpreter (and so with its own nats-server)."""
    proc = subprocess.Popen([sys.executable, str(script), *argv], cwd=REPO_ROOT)
    try:
        return proc.wait()
    except BaseException:
        # Interrupted: let the benchmark stop its worker and server itself (SIGTERM), kill if stuck.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise


def main(argv: list[str]) -> int:
    install_stop_handlers()
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    failed = []
    try:
        for script in scripts:
            print(f"=== {script.name} {' '.join(argv)}".rstrip(), flush=True)
            start = time.perf_counter()
            rc = run_one(script, argv)
            print(
                f"=== {script.name}: exit {rc} in {time.perf_counter() - start:.1f}s\n", flush=True
            )
            if rc != 0:
                failed.append(script.name)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    path = write_results_md()
    print(f"regenerated {path.relative_to(REPO_ROOT)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
