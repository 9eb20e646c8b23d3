"""The CLI in the terminal it runs in: listings at 80 columns, at 200 and piped show every id
(job, schedule and dead-letter ids, worker and queue names) whole on one line, and no line
wider than the terminal; commands take a unique start of an id or worker name; the nouns
``workers`` and ``schedules`` beside the seed spellings; ``--version`` and shell completion.

Run as ``python -m naq`` subprocesses against the session's nats-server; the table fitting
itself is checked without one.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import nats
import pytest

import naq
from naq import JobStatus, Queue
from naq.cli.tables import Column, clean, fit, shorten
from naq.errors import AmbiguousIdError
from naq.id_prefix import SHOWN_CANDIDATES, unique_match
from tests import jobs
from tests.helpers import (
    Result,
    cli_all,
    dead_letter_subscription,
    naq_cli,
    next_dead_letter,
    prefix,
    running_worker,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
server = pytest.mark.usefixtures("nats_url")


def at_80() -> dict[str, str]:
    return dict(os.environ, COLUMNS="80")


def piped() -> dict[str, str]:
    """The environment of ``naq ... | grep``: no COLUMNS (a shell does not export it)."""
    return {key: value for key, value in os.environ.items() if key != "COLUMNS"}


async def cli_envs(*calls: tuple[Mapping[str, str], tuple[str, ...]]) -> list[Result]:
    """Run several CLI commands at once, each with its own environment."""
    return list(await asyncio.gather(*(naq_cli(*args, env=env) for env, args in calls)))


def line_with(result: Result, name: str) -> str:
    """The line showing ``name`` whole, as ``grep -w`` would find it."""
    assert result.code == 0, result
    pattern = re.compile(rf"(^|[\s,]){re.escape(name)}($|[\s,])")
    found = [line for line in result.out.splitlines() if pattern.search(line)]
    assert found, (name, result.args, result.out)
    return found[0]


# -- listings ------------------------------------------------------------------------------

LISTINGS = (
    ("jobs",),
    ("failed", "list"),
    ("list-workers",),
    ("list-scheduled", "--detailed"),
    ("schedules",),
    ("queues",),
)
#: Checked at 200 columns too: those with columns left out at 80.
WIDE = (("jobs",), ("failed", "list"), ("list-scheduled", "--detailed"))

#: Rows each listing has in the test below.
ROWS = {"jobs": 2, "failed": 1, "list-workers": 1, "queues": 1}
ROWS |= {"list-scheduled": 2, "schedules": 2}


@server
async def test_listings_show_whole_ids_at_80_columns_at_200_and_piped() -> None:
    queue_name = "width-reports-nightly-queue"
    worker_name = "web-7f3a2c-worker-pool-east-" + uuid.uuid4().hex[:6]
    async with (
        Queue(queue_name) as queue,
        running_worker(queue_name, worker_name=worker_name, heartbeat_interval=0.2),
    ):
        ok = await queue.enqueue(jobs.add, 20, 22)
        bad = await queue.enqueue(jobs.fail, "SMTP refused\nby mail.example.com, a long error")
        assert await ok.result(timeout=10) == 42
        assert (await bad.wait(timeout=10)).status == JobStatus.FAILED
        every = await queue.schedule(jobs.noop, interval=300)
        named = "nightly-report-generation-for-all-tenants"
        await queue.schedule(jobs.add, 1, 2, cron="0 3 * * *", job_id=named)
        names = {
            ("jobs",): [ok.job_id, bad.job_id],
            ("failed", "list"): [bad.job_id],
            ("list-workers",): [worker_name],
            ("list-scheduled", "--detailed"): [every.job_id, named],
            ("schedules",): [every.job_id, named],
            ("queues",): [queue_name],
        }
        envs = {"80": at_80(), "200": dict(os.environ, COLUMNS="200"), "piped": piped()}
        show = ("job", "show", ok.job_id)
        calls = [(mode, args) for mode in ("80", "piped") for args in (*LISTINGS, show)]
        calls += [("200", args) for args in WIDE]
        results = await cli_envs(*((envs[mode], args) for mode, args in calls))

    for (mode, args), result in zip(calls, results, strict=True):
        wanted = names.get(args, [ok.job_id, queue_name, worker_name])
        for name in wanted:
            line = line_with(result, name)
            if mode == "piped":
                assert "\t" in line, (args, line)  # a tab-separated row, not a fitted table
        # A queue name, in any column, is shown whole or not at all.
        for line in result.out.splitlines():
            assert queue_name[:8] not in line or queue_name in line, (args, result.out)
        if mode == "80":
            too_wide = [line for line in result.out.splitlines() if len(line) > 80]
            assert too_wide == [], (args, result.out)
        if mode == "piped" and args != show:
            header, *rows = result.out.splitlines()
            assert "\t" in header and len(rows) == ROWS[args[0]], result.out
            assert all(row.count("\t") == header.count("\t") for row in rows), result.out

    by_call = dict(zip(calls, results, strict=True))
    # At 80 columns the history leaves columns out, and says which; piped has them all,
    # the error on its row's line, its newline a space.
    narrow = by_call[("80", ("jobs",))].out
    assert "not shown at this width:" in narrow and "error" in narrow.splitlines()[-1]
    assert "SMTP refused by mail.example.com, a long error" in line_with(
        by_call[("piped", ("jobs",))], bad.job_id
    )
    assert "SMTP refused" in line_with(by_call[("200", ("failed", "list"))], bad.job_id)
    wide = by_call[("200", ("list-scheduled", "--detailed"))].out
    assert "not shown" not in wide and "last error" in wide


@server
async def test_job_show_fits_80_columns_and_pipes_as_field_lines() -> None:
    async with Queue("width-show") as queue, running_worker("width-show"):
        job = await queue.enqueue(jobs.echo_kwargs, "x" * 150, note="y " * 60)
        await job.wait(timeout=10)
        narrow, pipe = await cli_envs(
            (at_80(), ("job", "show", job.job_id)), (piped(), ("job", "show", job.job_id))
        )
    assert max(len(line) for line in narrow.out.splitlines()) <= 80, narrow.out
    assert job.job_id in line_with(narrow, job.job_id)
    lines = pipe.out.splitlines()
    assert lines[0] == f"job id\t{job.job_id}"
    assert "status\tcompleted" in lines
    assert any(line.startswith("args\t") and "x" * 150 in line for line in lines)


# -- ids given by their start -------------------------------------------------------------


@server
async def test_commands_take_a_unique_prefix_of_an_id_or_worker_name(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    worker_name = "stoppable-" + uuid.uuid4().hex
    async with Queue("width-prefix") as queue:
        async with running_worker("width-prefix", worker_name=worker_name):
            done = await queue.enqueue(jobs.add, 1, 2)
            flaky = await queue.enqueue(jobs.flaky, str(counter), 1)
            exact = await queue.enqueue(jobs.add, 2, 2, job_id="exact-id")
            longer = await queue.enqueue(jobs.add, 3, 3, job_id="exact-id-longer")
            for job in (done, flaky, exact, longer):
                await job.wait(timeout=10)
            schedule = await queue.schedule(jobs.noop, interval=300)
            shown, exact_shown, requeued, paused, stopped = await cli_all(
                ("job", "show", done.job_id[:10], "--json"),
                ("job", "show", "exact-id", "--json"),
                ("failed", "requeue", flaky.job_id[:10]),
                ("job-control", schedule.job_id[:10], "pause"),
                ("worker-stop", worker_name[:14]),
            )
            assert shown.json()["job_id"] == done.job_id
            assert exact_shown.json()["job_id"] == "exact-id"  # the exact id beats the prefix
            requeued.assert_ok(f"Requeued failed job {flaky.job_id}")
            paused.assert_ok(f"Scheduled job {schedule.job_id} paused")
            stopped.assert_ok(f"Worker {worker_name} is stopping")
        async with running_worker("width-prefix"):
            assert await flaky.result(timeout=10) == 2
    assert (await naq.list_scheduled_jobs(job_id=schedule.job_id))[0].status == "paused"


@server
async def test_an_ambiguous_or_unknown_prefix_is_one_line_and_exit_1() -> None:
    async with Queue("width-ambiguous") as queue:
        for suffix in ("one", "two"):
            await queue.enqueue(jobs.add, 1, 2, job_id=f"shared-prefix-{suffix}")
            await queue.schedule(jobs.noop, interval=300, job_id=f"shared-sched-{suffix}")
    ambiguous, ambiguous_schedule, short, unknown, unknown_schedule = await cli_all(
        ("job", "show", "shared-prefix"),
        ("schedules", "pause", "shared-sched"),
        ("job", "show", "sha"),
        ("job", "show", "nothing-starts-so"),
        ("job-control", "nothing-starts-so", "pause"),
    )
    ambiguous.assert_one_line_error("shared-prefix-one", "shared-prefix-two")
    assert ambiguous.code == 1
    ambiguous_schedule.assert_one_line_error("shared-sched-one", "shared-sched-two")
    # Too short to be looked up as a prefix, and an unknown one: the usual not-found line.
    short.assert_one_line_error("no job 'sha'")
    unknown.assert_one_line_error("no job 'nothing-starts-so'")
    unknown_schedule.assert_one_line_error("no scheduled job 'nothing-starts-so'")
    assert {s.status for s in await naq.list_scheduled_jobs()} == {"active"}


@server
async def test_a_dead_letter_without_a_job_id_is_named_by_its_sequence(nats_url: str) -> None:
    async with Queue("width-garbage") as queue:
        await queue.enqueue(jobs.add, 1, 2)  # the stream exists for the raw publish
        async with (
            dead_letter_subscription(nats_url, "width-garbage") as letters,
            running_worker("width-garbage"),
        ):
            nc = await nats.connect(nats_url)
            try:
                await nc.jetstream().publish(f"{prefix()}.queue.width-garbage", b"not a job")
            finally:
                await nc.close()
            assert (await next_dead_letter(letters)).job_id is None
    (letter,) = await naq.list_failed_jobs()
    name = f"#{letter.seq}"
    listed, requeue = await cli_envs(
        (piped(), ("failed", "list")), (at_80(), ("failed", "requeue", name))
    )
    assert line_with(listed, name).startswith(f"{name}\t")
    requeue.assert_one_line_error(name, "not a naq job")
    (await naq_cli("failed", "delete", name)).assert_ok(f"Deleted failed job {name}")
    assert await naq.list_failed_jobs() == []


# -- the nouns beside the seed names ------------------------------------------------------


@server
async def test_workers_and_schedules_nouns() -> None:
    name = "noun-worker-" + uuid.uuid4().hex[:6]
    async with Queue("width-nouns") as queue:
        for schedule_id in ("to-pause", "to-resume", "to-cancel", "to-move"):
            await queue.schedule(jobs.noop, interval=60, job_id=schedule_id)
        assert await queue.pause_scheduled_job("to-resume")
        async with running_worker("width-nouns", worker_name=name):
            listed, listed_json, seed_json = await cli_all(
                ("workers",), ("workers", "list", "--json"), ("list-workers", "--json")
            )
            (stopped,) = await cli_all(("workers", "stop", name))
        results = await cli_all(
            ("schedules", "pause", "to-pause"),
            ("schedules", "resume", "to-resume"),
            ("schedules", "cancel", "to-cancel"),
            ("schedules", "reschedule", "to-move", "--interval", "5", "--repeat", "3"),
            ("schedules", "reschedule", "to-move"),
        )
        schedules, schedules_json, seed_schedules = await cli_all(
            ("schedules",), ("schedules", "list", "--json", "-s", "paused"), ("list-scheduled",)
        )
    assert name in line_with(listed, name)
    assert [w["name"] for w in listed_json.json()] == [name]
    assert listed_json.json()[0].keys() == seed_json.json()[0].keys()
    stopped.assert_ok(f"Worker {name} is stopping")
    pause, resume, cancel, move, nothing = results
    pause.assert_ok("to-pause paused")
    resume.assert_ok("to-resume resumed")
    cancel.assert_ok("to-cancel cancelled")
    move.assert_ok("to-move rescheduled")
    nothing.assert_one_line_error("--interval")
    records = {s.job_id: s for s in await naq.list_scheduled_jobs()}
    assert set(records) == {"to-pause", "to-resume", "to-move"}
    assert records["to-pause"].status == "paused" and records["to-resume"].status == "active"
    assert records["to-move"].interval == 5 and records["to-move"].repeat == 3
    assert schedules_json.ids() == ["to-pause"]
    assert schedules.out == seed_schedules.out


# -- version and completion ----------------------------------------------------------------


async def test_version_flag_and_command_print_the_one_version() -> None:
    flag, short, command = await cli_all(("--version",), ("-V",), ("version",))
    for result in (flag, short, command):
        result.assert_ok()
        assert result.out.strip() == f"naq {naq.__version__}"
    # pyproject.toml reads the version from naq.__version__ rather than writing it again.
    project = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', project, re.M)
    assert 'version = { attr = "naq.__version__" }' in project
    assert not re.search(r'^version = "', project, re.M)


async def test_shell_completion_is_typers_own() -> None:
    env = dict(os.environ, SHELL="/bin/bash")
    # --show-completion prints the script of the shell it runs in (found from its parent
    # process): run it from bash, whatever runs the tests.
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f"{shlex.quote(sys.executable)} -m naq --show-completion; exit $?",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await shell.communicate()
    assert shell.returncode == 0, err.decode()
    assert "_NAQ_COMPLETE=complete_bash" in out.decode()
    assert "complete -o default -F _naq_completion naq" in out.decode()
    (help_text,) = await cli_envs((env, ("--help",)))
    help_text.assert_ok("--install-completion", "--show-completion")
    env["_NAQ_COMPLETE"] = "complete_bash"
    completed = await naq_cli(env=dict(env, COMP_WORDS="naq schedules re", COMP_CWORD="2"))
    assert completed.out.split() == ["resume", "reschedule"], completed


# -- fitting a table, without a server -------------------------------------------------------

COLUMNS = (
    Column("job id", "id"),
    Column("queue", "fixed", 70),
    Column("function", "text", 80, cut="left"),
    Column("status", "fixed", 90),
    Column("ended", "fixed", 60),
    Column("error", "text", 50),
)
ROW = ["3c0c8a8f54aa4b5e9d0d3f2a1b0c9d8e", "emails", "app.tasks:send_email", "failed"]
ROW += ["2030-01-01 12:00:00", "SMTPError: connection refused by mail.example.com"]


def test_fit_keeps_ids_whole_and_leaves_out_the_least_important_columns() -> None:
    wide = fit(COLUMNS, [ROW], 200)
    assert wide == [32, 6, 20, 6, 19, 49]
    narrow = fit(COLUMNS, [ROW], 80)
    assert narrow[0] == 32 and narrow[4] is None  # "ended" goes before the text is cut
    shown = [w for w in narrow if w is not None]
    assert sum(shown) + 2 * (len(shown) - 1) <= 80
    # Too narrow even for the id: it stays whole, everything else goes.
    assert fit(COLUMNS, [ROW], 20) == [32, None, None, None, None, None]


def test_cells_are_one_line_and_shortened_with_an_ellipsis() -> None:
    assert clean("a\nb\tc\x1b[31m") == "a b c [31m"
    assert shorten("app.tasks:send_email", 12, "left") == "…:send_email"
    assert shorten("SMTPError: refused", 8) == "SMTPErr…"
    assert shorten("short", 8) == "short"


def test_a_prefix_matches_one_id_or_none_or_is_ambiguous() -> None:
    ids = ["3c0c8a8f54aa", "3c0c99", "7f3a2c"]
    assert unique_match("jobs", "3c0c8", ids) == "3c0c8a8f54aa"
    assert unique_match("jobs", "7f3", ids) == "7f3"  # shorter than MIN_PREFIX: not looked up
    assert unique_match("jobs", "beef", ids) == "beef"  # no match: left to the not-found error
    with pytest.raises(
        AmbiguousIdError, match=r"^'3c0c' is the start of 2 jobs: 3c0c8a8f54aa, 3c0c99$"
    ):
        unique_match("jobs", "3c0c", ids)
    many = [f"job-{i}" for i in range(SHOWN_CANDIDATES + 2)]
    with pytest.raises(AmbiguousIdError, match=r"job-5 and 2 more$"):
        unique_match("jobs", "job-", many)
