"""TUI at scale: open time, keypress repaint time and memory with a large history, and
what an open TUI costs while a worker drains jobs at full speed.

Seeds a server with 100,000 ended jobs (ended through ``JobStore.end``: result,
status and outcome-log entry each, as naq ends a job) and 50 live workers, then
runs the real app (``NaqApp`` over the live service) headless and measures:

- open: from app start until the Jobs pane holds its rows and the Workers pane all 50;
- keypress: pane switches, a re-sort of the Jobs pane and a filter keystroke, each
  from the key press until the screen has repainted (median and max);
- memory: the process's peak RSS before and after.

The drain case: ``--drain`` no-op jobs (200,000) are enqueued, then one burst worker
(``naq worker -c 100``) drains them; four times, without the TUI, with it, with it and
without (``DRAIN_ORDER``), the app showing each pane in turn for ``KEY_PAUSE`` seconds
(1.5). Measured: the TUI process's CPU share over the drain (its CPU seconds over the
drain's wall time), its keypress-to-frame times meanwhile, and the drain rates (the
worker's own first-start to last-end).

Run: ``.venv/bin/python bench/bench_tui.py [--jobs 100000 --workers 50 --drain 200000]``;
``--quick`` seeds 2,000 jobs and 5 workers, drains 20,000, and writes no result files;
``--only drain`` runs the drain case alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.events import Key  # noqa: E402

from bench.common import (  # noqa: E402
    Row,
    embedded_server,
    install_stop_handlers,
    naq_drain,
    print_table,
    reproduce_command,
    save_results,
)
from bench.seed_history import end_jobs  # noqa: E402
from naq.broker import Broker  # noqa: E402
from naq.models import JobStatus, StatusRecord, WorkerRecord, WorkerStatus  # noqa: E402
from naq.settings import Settings  # noqa: E402
from naq.transport import close_connections  # noqa: E402
from naq_tui.app import NaqApp  # noqa: E402
from naq_tui.live import LiveService  # noqa: E402
from naq_tui.state import MAX_JOBS, PANES  # noqa: E402
from naq_tui.widgets.filter_input import FilterInput  # noqa: E402


def rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def history_record(jobs: int) -> Callable[[int], StatusRecord]:
    """Job ``i`` of a history of ``jobs``: one in ten failed, over five queues."""
    now = time.time()

    def record(i: int) -> StatusRecord:
        status = JobStatus.FAILED if i % 10 == 0 else JobStatus.COMPLETED
        return StatusRecord(
            job_id=f"job{i:07d}",
            status=status,
            queue=f"queue{i % 5}",
            function="billing.tasks:charge_card" if i % 3 else "mail.tasks:send_email",
            enqueued_at=now - jobs + i,
            updated_at=now - jobs + i + 0.5,
            started_at=now - jobs + i + 0.1,
            attempt=1,
            args=[i, "customer@example.com"],
            error="ValueError: card declined" if status == JobStatus.FAILED else None,
        )

    return record


async def seed(settings: Settings, jobs: int, workers: int) -> None:
    """End ``jobs`` jobs as naq ends them (result, status, outcome log), and write
    ``workers`` heartbeats."""
    broker = await Broker.connect(settings)
    await broker.ensure_jobs_stream()
    connection = broker.connection
    now = time.time()
    await end_jobs(broker, history_record(jobs), jobs)
    beats = []
    for w in range(workers):
        beats.append(
            await broker.put_worker(
                WorkerRecord(
                    name=f"worker-{w:02d}",
                    host=socket.gethostname(),
                    pid=10_000 + w,
                    queues=[f"queue{w % 5}"],
                    status=WorkerStatus.IDLE,
                    concurrency=10,
                    started_at=now - 600,
                    heartbeat_at=time.time(),
                    processed=jobs // workers,
                    ttl=600,
                )
            )
        )
    await connection.wait_acks(beats)
    await close_connections()  # this event loop ends here; the app runs on its own


def key_script(app: NaqApp) -> list[tuple[str, Callable[[], Callable[[], bool]]]]:
    """Keys to time, each with a maker of the condition its effect meets once handled.

    The maker is called just before the key is sent (a sort is judged against the sort
    in force then).
    """
    views = app.state.views
    filter_input = app.query_one(FilterInput)

    def pane(name: str) -> Callable[[], Callable[[], bool]]:
        return lambda: lambda: pane_drawn(app, name)

    class SortMoved:
        """Holds once the Jobs pane's sort differs from what it was when created."""

        def __init__(self) -> None:
            self.before = (views["jobs"].sort_column, views["jobs"].sort_reverse)

        def __call__(self) -> bool:
            return (views["jobs"].sort_column, views["jobs"].sort_reverse) != self.before

    def typed(text: str) -> Callable[[], Callable[[], bool]]:
        return lambda: lambda: views["jobs"].filter == text

    def cursor(moved: Callable[[int, int], bool]) -> Callable[[], Callable[[], bool]]:
        def make() -> Callable[[], bool]:
            before = app.tables["jobs"].cursor_row
            return lambda: moved(before, app.tables["jobs"].cursor_row)

        return make

    # Each round ends on the Jobs pane: it starts elsewhere, as a key that changes nothing
    # draws nothing.
    return [
        ("2", pane("workers")),
        ("1", pane("queues")),
        ("4", pane("jobs")),
        ("s", SortMoved),
        ("s", SortMoved),
        ("S", SortMoved),
        ("5", pane("failed")),
        ("4", pane("jobs")),
        ("end", cursor(lambda before, row: row > before)),
        ("home", cursor(lambda before, row: row == 0)),
        ("down", cursor(lambda before, row: row == before + 1)),
        ("pagedown", cursor(lambda before, row: row > before)),
        ("slash", lambda: lambda: bool(filter_input.display)),
        ("c", typed("c")),
        ("a", typed("ca")),
        ("r", typed("car")),
        ("escape", lambda: lambda: not filter_input.display),
    ]


def pane_drawn(app: NaqApp, pane: str) -> bool:
    """Whether ``pane`` is the one shown and the screen's layout has placed it (a frame
    drawn before that shows the tab's highlight move, not the pane)."""
    return app.pane == pane and app.pane_widget(pane).region.area > 0


async def time_key(app: NaqApp, key: str, handled: Callable[[], bool]) -> float:
    """Seconds from sending ``key`` until a frame showing its effect reaches the terminal.

    The frame is caught where the app hands it to its driver: a frame rendered once
    ``handled()`` holds includes the key's effect, because rendering and handing over
    run in one step with nothing in between.
    """
    shown = asyncio.Event()
    display = app._display

    def watch(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if handled():
            shown.set()

    app._display = watch  # type: ignore[method-assign]
    try:
        event = Key(key, key if len(key) == 1 else None)
        started = time.perf_counter()
        app.post_message(event)
        try:
            await asyncio.wait_for(shown.wait(), 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"no frame showed the effect of key {key!r}") from None
        return time.perf_counter() - started
    finally:
        app._display = display  # type: ignore[method-assign]


async def measure(settings: Settings, jobs: int, workers: int) -> dict[str, float]:
    """Open the app on the seeded server and time opening and keypresses."""
    app = NaqApp(LiveService(settings))
    shown = min(jobs, MAX_JOBS)
    started = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.perf_counter() + 60
        while (
            len(app.state.rows["jobs"]) < shown or len(app.state.rows["workers"]) < workers
        ) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        await pilot.pause()
        opened = time.perf_counter() - started
        timings = []
        for _ in range(3):
            for key, condition in key_script(app):
                timings.append(await time_key(app, key, condition()))
                # Let the app settle between keys, outside the timed span.
                await pilot.pause()
        return {
            "open": opened,
            "jobs_rows": len(app.state.rows["jobs"]),
            "worker_rows": len(app.state.rows["workers"]),
            "key_median": statistics.median(timings),
            "key_p90": statistics.quantiles(timings, n=10)[-1],
            "key_max": max(timings),
        }


#: Keys pressed (and timed) over and over while the worker drains: every pane in turn.
DRAIN_KEYS = tuple(os.environ.get("NAQ_BENCH_KEYS", "4012356"))
#: Seconds each pane is shown before the next key (an operator looking around).
KEY_PAUSE = float(os.environ.get("NAQ_BENCH_KEY_PAUSE", "1.5"))


async def drain(settings: Settings, n: int, workdir: Path, with_tui: bool) -> dict[str, float]:
    """Enqueue ``n`` no-op jobs, then time one burst worker draining them, with the app
    open (on the Jobs pane, pane keys pressed all along) or not."""
    import nats

    from naq.queue import Queue

    queue = Queue("drain", settings=settings)
    for start in range(0, n, 1000):
        await queue.enqueue_many([("bench.tasks:async_noop", (), {})] * min(1000, n - start))
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()

    async def run_drain() -> dict[str, Any]:
        return await naq_drain(
            js, settings, "drain", "bench.tasks:async_noop", 0, workdir=workdir, worker_mode="cli"
        )

    figures: dict[str, float] = {}
    try:
        if not with_tui:
            out = await run_drain()
        else:
            app = NaqApp(LiveService(settings))
            async with app.run_test(size=(120, 36)) as pilot:
                while app.state.connection is None or len(app.state.rows["jobs"]) < 100:
                    await asyncio.sleep(0.05)
                # On the cycle's last pane, so its first key switches too (a key that
                # changes nothing draws nothing).
                await pilot.press(DRAIN_KEYS[-1])
                await pilot.pause(1.0)  # the first read of the history is over
                cpu, wall = time.process_time(), time.perf_counter()
                worker = asyncio.create_task(run_drain())
                timings: list[float] = []
                #: pane -> CPU seconds and wall seconds it was shown, while the worker ran.
                shown: dict[str, list[float]] = {}
                while not worker.done():
                    for key in DRAIN_KEYS:
                        target = "overview" if key == "0" else PANES[int(key)]
                        drawn = functools.partial(pane_drawn, app, target)
                        timings.append(await time_key(app, key, drawn))
                        at_cpu, at_wall = time.process_time(), time.perf_counter()
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(asyncio.shield(worker), KEY_PAUSE)
                        spent = shown.setdefault(target, [0.0, 0.0])
                        spent[0] += time.process_time() - at_cpu
                        spent[1] += time.perf_counter() - at_wall
                        if worker.done():
                            break
                out = await worker
                # Over the drain alone: the worker process's life, from spawn to exit.
                figures["tui_cpu_share"] = (time.process_time() - cpu) / (
                    time.perf_counter() - wall
                )
                worst = max(shown, key=lambda p: shown[p][0] / shown[p][1])
                figures["worst_pane"] = worst  # type: ignore[assignment]
                figures["worst_pane_share"] = shown[worst][0] / shown[worst][1]
                figures["pane_shares"] = ", ".join(  # type: ignore[assignment]
                    f"{p} {c / w * 100:.0f} %" for p, (c, w) in shown.items()
                )
                figures["key_p90"] = statistics.quantiles(timings, n=10)[-1]
                figures["key_median"] = statistics.median(timings)
                figures["keys"] = len(timings)
                figures["sampled_every"] = float(app.state.sampling.every)
    finally:
        await nc.close()
        await close_connections()
    figures["drain_seconds"] = out["busy_seconds"] or out["seconds"]
    figures["drain_rate"] = n / figures["drain_seconds"]
    return figures


#: The drain case's runs, without the TUI (False) and with it (True): in that order and
#: back (ABBA), so that a machine drifting faster or slower over the runs favours neither.
DRAIN_ORDER = (False, True, True, False)


def drain_case(url: str, n: int) -> tuple[list[Row], list[str]]:
    """The drain case's rows and notes."""
    import tempfile

    ordered = []
    with tempfile.TemporaryDirectory() as workdir:
        for k, with_tui in enumerate(DRAIN_ORDER):
            settings = Settings.from_env().replace(
                nats_url=url, prefix=f"benchdrain{k}" + ("tui" if with_tui else "")
            )
            ordered.append(asyncio.run(drain(settings, n, Path(workdir), with_tui)))
    runs = {
        side: [run for with_tui, run in zip(DRAIN_ORDER, ordered, strict=True) if with_tui == side]
        for side in (False, True)
    }

    def mean(with_tui: bool, key: str) -> float:
        return statistics.fmean(run[key] for run in runs[with_tui])

    bare_rate, watched_rate = mean(False, "drain_rate"), mean(True, "drain_rate")
    # The TUI's figures from its costlier run.
    watched = max(runs[True], key=lambda run: run["tui_cpu_share"])
    rows = [
        Row("drain, no TUI open: naq worker -c 100 async no-op", n, n / bare_rate,
            unit="job/s"),
        Row("drain, TUI open on it (each pane in turn)", n, n / watched_rate,
            unit="job/s", baseline="drain, no TUI open: naq worker -c 100 async no-op"),
        Row("TUI CPU share during the drain", 1, watched["tui_cpu_share"], unit="core"),
        Row("keypress repaint during the drain, p90", 1, watched["key_p90"], unit="key"),
    ]  # fmt: skip
    rows[1].ratio = watched_rate / bare_rate
    each = ", ".join(
        f"{run['drain_rate']:,.0f}{' (TUI)' if with_tui else ''}"
        for with_tui, run in zip(DRAIN_ORDER, ordered, strict=True)
    )
    notes = [
        f"Drain of {n:,} no-op jobs by one worker, {len(DRAIN_ORDER)} runs in the order "
        f"without, with, with, without the TUI ({each} jobs/s): {bare_rate:,.0f} jobs/s on "
        f"average with no TUI open, {watched_rate:,.0f} jobs/s with it open "
        f"({rows[1].ratio:.2f}×).",
        f"TUI process during its costlier drain: {watched['tui_cpu_share'] * 100:.1f} % of "
        f"one core on average (target ≤ 15 %; {mean(True, 'tui_cpu_share') * 100:.1f} % over "
        f"both), {watched['worst_pane_share'] * 100:.1f} % while its costliest pane "
        f"({watched['worst_pane']}) was shown, each pane shown {KEY_PAUSE:g} s in turn "
        f"({watched['pane_shares']}, the switch to it included); "
        f"{int(watched['keys'])} pane keys pressed, frame after the key "
        f"median {watched['key_median'] * 1000:.1f} ms, p90 {watched['key_p90'] * 1000:.1f} ms "
        "(target < 100 ms); the Jobs pane said it showed 1 in "
        f"{int(watched['sampled_every'])} completed at the end.",
    ]
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--drain", type=int, default=200_000, help="jobs of the drain case")
    parser.add_argument("--only", choices=["drain"], help="run only this case (no files)")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 5 workers; no files")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.workers = min(args.jobs, 2_000), min(args.workers, 5)
        args.drain = min(args.drain, 20_000)
    install_stop_handlers()
    if args.only == "drain":
        with embedded_server() as server:
            rows, notes = drain_case(server.url, args.drain)
        print_table("TUI during a drain", rows)
        for note in notes:
            print("-", note)
        return
    with embedded_server() as server:
        settings = Settings.from_env().replace(nats_url=server.url, prefix="benchtui")
        t0 = time.perf_counter()
        asyncio.run(seed(settings, args.jobs, args.workers))
        seeded = time.perf_counter() - t0
        before = rss_mb()
        figures = asyncio.run(measure(settings, args.jobs, args.workers))
        after = rss_mb()
        drain_rows, drain_notes = drain_case(server.url, args.drain)
    rows = [
        Row("seed: jobs ended (JobStore.end) + heartbeats", args.jobs, seeded, unit="job/s"),
        Row("TUI open (jobs + workers shown)", 1, figures["open"], unit="open"),
        Row("keypress repaint, median", 1, figures["key_median"], unit="key"),
        Row("keypress repaint, p90", 1, figures["key_p90"], unit="key"),
        Row("keypress repaint, max", 1, figures["key_max"], unit="key"),
        *drain_rows,
    ]
    print_table("TUI at scale" + (" (quick)" if args.quick else ""), rows)
    notes = [
        f"{args.jobs:,} ended jobs and {args.workers} workers recorded; the Jobs pane keeps the "
        f"{figures['jobs_rows']:,} most recent (MAX_JOBS), the Workers pane shows "
        f"{figures['worker_rows']}.",
        f"open = {figures['open'] * 1000:.0f} ms (target < 2,000 ms); keypress repaint median "
        f"{figures['key_median'] * 1000:.1f} ms, p90 {figures['key_p90'] * 1000:.1f} ms, "
        f"max {figures['key_max'] * 1000:.1f} ms "
        "(target < 100 ms).",
        f"peak RSS {before:.0f} MB before opening the app, {after:.0f} MB after (bounded: the "
        "app keeps at most MAX_JOBS jobs in memory, whatever the history holds).",
        "Keys timed, three rounds: pane switches 1/2/4/5, s/S re-sorts of the Jobs pane, "
        "cursor down/page down/home, / then typing a filter, escape. Each is timed from the "
        "key event until the first frame showing its effect is handed to the terminal.",
        *drain_notes,
    ]
    for note in notes:
        print("-", note)
    if args.quick:
        print("quick run: no result files written")
        return
    save_results(
        "tui",
        title="TUI at scale: open time, keypress repaint, memory",
        command=reproduce_command("bench_tui.py", sys.argv[1:]),
        rows=rows,
        params={"jobs": args.jobs, "workers": args.workers, "drain": args.drain},
        notes=notes,
    )


if __name__ == "__main__":
    os.environ.setdefault("NAQ_LOG_LEVEL", "WARNING")
    main()
