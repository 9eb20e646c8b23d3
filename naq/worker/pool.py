"""A supervised pool of worker processes: ``naq worker QUEUES --processes N``.

The supervisor starts N children, each an ordinary ``naq worker`` process and so a
:class:`~naq.worker.Worker` of its own, named ``NAME-1`` … ``NAME-N``, and replaces one
that ends while the pool runs: at once when it exited 0 (recycled, or stopped by
``naq worker-stop NAME-i``), after a growing delay when it keeps dying soon after its
start. JetStream hands a dead child's jobs to the others as for any worker that died.
The supervisor takes no jobs and writes nothing to the workers bucket; its one use of
NATS is answering ``naq worker-stop NAME``, which stops the whole pool.

Children run in sessions of their own, so a terminal's Ctrl-C reaches the supervisor
alone, which forwards one SIGTERM to each. Each child watches the read end of a pipe
whose write end only the supervisor holds: when the supervisor dies, even by SIGKILL,
the pipe closes and the child stops gracefully (:func:`watch_supervisor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from naq.control import answer_control
from naq.errors import ConfigurationError, NaqConnectionError, NaqException
from naq.models import WorkerStatus
from naq.names import Names
from naq.settings import Settings
from naq.stop_signals import install_stop_signals
from naq.transport import Connection, Msg, open_connection

if TYPE_CHECKING:
    from naq.worker.loop import Worker

log = logging.getLogger("naq.worker.pool")

#: The environment variable telling a pool's child which inherited fd is its supervisor's pipe.
PARENT_FD_ENV = "NAQ_POOL_PARENT_FD"
#: Seconds before a child that crashed is replaced; doubled at each crash soon after a start.
FIRST_BACKOFF = 0.5
#: The longest wait before a crashed child is replaced.
MAX_BACKOFF = 30.0
#: A child that lived this many seconds before it crashed is replaced after FIRST_BACKOFF again.
STEADY_LIFE = 30.0
#: Seconds a stopping pool gives its children beyond their shutdown grace before SIGKILL.
KILL_MARGIN = 5.0
#: Seconds between attempts to reach NATS for ``naq worker-stop`` when it was unreachable.
CONTROL_RETRY = 5.0
#: How often a child whose supervisor is gone asks its worker to stop while it starts up.
_STOP_RETRY = 0.1


def validate_processes(processes: object) -> int:
    """``processes`` if it is a number of worker processes a pool can run.

    Raises:
        ConfigurationError: it is not an integer >= 1 (named in the message).
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigurationError(f"processes={processes!r} must be an integer >= 1")
    return processes


class Backoff:
    """How long one place of the pool waits before it replaces a child that crashed."""

    def __init__(self) -> None:
        self.next_delay = FIRST_BACKOFF

    def after_crash(self, lived: float) -> float:
        """The wait before the next start, for a child that crashed after ``lived`` seconds."""
        if lived >= STEADY_LIFE:
            self.reset()
        delay = self.next_delay
        self.next_delay = min(delay * 2, MAX_BACKOFF)
        return delay

    def reset(self) -> None:
        """Start over from FIRST_BACKOFF (a child lived long, or ended cleanly)."""
        self.next_delay = FIRST_BACKOFF


def describe_exit(returncode: int) -> str:
    """How a child ended, from its return code: its exit code or the signal that killed it."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


@dataclass
class _Place:
    """One place of the pool, held by one child after another."""

    name: str
    backoff: Backoff = field(default_factory=Backoff)
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    #: The write end of the pipe the current child watches.
    pipe: int | None = None
    #: Signals the current child was sent (each goes once).
    signalled: set[int] = field(default_factory=set)


class WorkerPool:
    """The supervisor of a pool's worker processes (see the module docstring).

    Raises:
        ConfigurationError: ``processes`` is not an integer >= 1.
    """

    def __init__(
        self,
        child_argv: Callable[[str], list[str]],
        *,
        processes: int,
        name: str,
        shutdown_grace: float,
        settings: Settings,
        burst: bool = False,
    ) -> None:
        self.processes = validate_processes(processes)
        self.child_argv = child_argv
        self.name = name
        self.shutdown_grace = float(shutdown_grace)
        self.settings = settings
        self.burst = burst
        self._places = [_Place(f"{name}-{i}") for i in range(1, processes + 1)]
        self._stopping: asyncio.Event | None = None  # made in run(): needs the loop
        #: What every child gets from now on, the one running and the ones still starting.
        self._stop_signal: int | None = None
        self._killed_on_request = False

    async def run(self) -> int:
        """Run the children until the pool stops; return the process's exit code."""
        self._stopping = stopping = asyncio.Event()
        self._install_signals()
        control = asyncio.create_task(self._serve_control())
        keepers = [asyncio.create_task(self._keep(place)) for place in self._places]
        log.info("pool %s: starting %d worker process(es)", self.name, self.processes)
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
        all_ended: asyncio.Future[Any] = asyncio.gather(*keepers)
        try:
            await asyncio.wait({stop_wait, all_ended}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                allowed = self.shutdown_grace + KILL_MARGIN
                _, running = await asyncio.wait(keepers, timeout=allowed)
                if running:
                    log.warning(
                        "pool %s: %d worker process(es) still running after %gs, killing them",
                        self.name,
                        len(running),
                        allowed,
                    )
                    self._send_all(signal.SIGKILL)
            await all_ended
        except BaseException:
            # An error in the supervisor itself: leave no child behind.
            stopping.set()
            self._send_all(signal.SIGKILL)
            await asyncio.gather(*keepers, return_exceptions=True)
            raise
        finally:
            stop_wait.cancel()
            await self._close_control(control)
        log.info("pool %s stopped", self.name)
        return 1 if self._killed_on_request else 0

    # -- the children ----------------------------------------------------------------

    async def _keep(self, place: _Place) -> None:
        """Keep a child running in ``place`` until the pool stops (or, in burst mode, until
        one ended cleanly)."""
        replacing: int | None = None
        while not self._is_stopping():
            process = await self._start(place, replacing)
            if process is None:
                code, lived = 1, 0.0  # it could not even start: wait as after a crash
            else:
                code = await process.wait()
                lived = time.monotonic() - place.started_at
                self._forget_child(place)
                log.info(
                    "pool %s: %s (pid %d) %s after %.1fs",
                    self.name,
                    place.name,
                    process.pid,
                    describe_exit(code),
                    lived,
                )
                replacing = process.pid
            if self._is_stopping():
                return
            if code == 0:
                place.backoff.reset()
                if self.burst:
                    return  # its queues are empty: nothing to replace it for
                continue  # recycled or stopped on its own: replaced at once
            delay = place.backoff.after_crash(lived)
            log.info("pool %s: %s starts again in %.1fs", self.name, place.name, delay)
            await self._pause(delay)

    async def _start(
        self, place: _Place, replacing: int | None
    ) -> asyncio.subprocess.Process | None:
        """Start ``place``'s next child; None (logged) when it could not be started."""
        read_end, write_end = os.pipe()
        env = dict(os.environ, **{PARENT_FD_ENV: str(read_end)})
        try:
            process = await asyncio.create_subprocess_exec(
                *self.child_argv(place.name),
                env=env,
                pass_fds=(read_end,),
                # Its own session: a terminal's Ctrl-C reaches the supervisor, which forwards it.
                start_new_session=True,
            )
        except OSError as exc:
            os.close(write_end)
            log.error("pool %s: could not start %s: %s", self.name, place.name, exc)
            return None
        finally:
            os.close(read_end)
        place.process = process
        place.pipe = write_end
        place.started_at = time.monotonic()
        place.signalled.clear()
        log.info(
            "pool %s: started %s (pid %d)%s",
            self.name,
            place.name,
            process.pid,
            "" if replacing is None else f" in place of pid {replacing}",
        )
        # A stop that came while it was starting: it was not among the children signalled.
        if self._stop_signal is not None:
            self._send(place, self._stop_signal)
        return process

    def _forget_child(self, place: _Place) -> None:
        if place.pipe is not None:
            os.close(place.pipe)
        place.process = None
        place.pipe = None

    def _send(self, place: _Place, sig: int) -> None:
        process = place.process
        if process is None or process.returncode is not None or sig in place.signalled:
            return
        place.signalled.add(sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sig == signal.SIGKILL:
                # The child leads its own process group: whatever its jobs started goes too.
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    def _send_all(self, sig: int) -> None:
        self._stop_signal = sig
        for place in self._places:
            self._send(place, sig)

    # -- stopping ----------------------------------------------------------------------

    def _is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    def _stop(self, reason: str) -> None:
        """Stop gracefully: each child gets one SIGTERM and finishes its running jobs."""
        if self._stopping is None or self._stopping.is_set():
            return
        log.info(
            "pool %s: %s, stopping its worker processes (again to kill them)", self.name, reason
        )
        self._stopping.set()
        self._send_all(signal.SIGTERM)

    def _install_signals(self) -> None:
        install_stop_signals(self._on_signal)

    def _on_signal(self, sig: int) -> None:
        if not self._is_stopping():
            self._stop(signal.Signals(sig).name)
            return
        log.warning(
            "pool %s: %s again, killing its worker processes", self.name, signal.Signals(sig).name
        )
        self._killed_on_request = True
        self._send_all(signal.SIGKILL)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the pool stops meanwhile."""
        assert self._stopping is not None
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({stop_wait}, timeout=seconds)
        finally:
            stop_wait.cancel()

    # -- remote control ----------------------------------------------------------------

    async def _serve_control(self) -> Connection | None:
        """Answer ``naq worker-stop NAME`` on the pool's own name; keep trying to reach NATS
        while it is unreachable (the children try on their own)."""
        subject = Names(self.settings.prefix).worker_control_subject(self.name)
        warned = False
        while not self._is_stopping():
            try:
                connection = await open_connection(self.settings, name=f"naq-pool-{self.name}")
            except NaqConnectionError as exc:
                if not warned:
                    log.warning(
                        "pool %s: %s; its workers start anyway, and `naq worker-stop %s` reaches "
                        "the pool once NATS is reachable (trying every %gs)",
                        self.name,
                        exc,
                        self.name,
                        CONTROL_RETRY,
                    )
                    warned = True
                await self._pause(CONTROL_RETRY)
                continue
            except NaqException as exc:
                log.error(
                    "pool %s: %s; `naq worker-stop %s` can't reach it", self.name, exc, self.name
                )
                return None
            try:
                await connection.subscribe(subject, self._on_control)
            except NaqException as exc:
                log.warning("pool %s: can't take commands yet (%s), trying again", self.name, exc)
                await connection.close()
                await self._pause(CONTROL_RETRY)
                continue
            log.info("pool %s: `naq worker-stop %s` stops the whole pool", self.name, self.name)
            return connection
        return None

    async def _on_control(self, msg: Msg) -> None:
        await answer_control(msg, lambda: self._stop("stop requested remotely"))

    async def _close_control(self, control: asyncio.Task[Connection | None]) -> None:
        if not control.done():
            control.cancel()
        with contextlib.suppress(BaseException):
            connection = await control
            if connection is not None:
                await connection.close()


def run_pool(
    child_argv: Callable[[str], list[str]],
    *,
    processes: int,
    name: str,
    shutdown_grace: float,
    settings: Settings,
    burst: bool = False,
) -> int:
    """Run a pool of ``processes`` worker processes under this process until it stops.

    ``child_argv(child_name)`` is the full command line of one child (a ``naq worker``
    named ``child_name``); children are named ``NAME-1`` … ``NAME-N``. ``shutdown_grace``
    is the children's, which a stopping pool gives them (plus :data:`KILL_MARGIN`) before
    it kills them. With ``burst``, a child that exits 0 is not replaced and the pool ends
    once every child has ended. Returns the exit code: 0 after a graceful stop (SIGTERM,
    SIGINT, ``naq worker-stop NAME``) or an ended burst, 1 when a second signal killed the
    children.

    Raises:
        ConfigurationError: ``processes`` is not an integer >= 1.
    """
    pool = WorkerPool(
        child_argv,
        processes=processes,
        name=name,
        shutdown_grace=shutdown_grace,
        settings=settings,
        burst=burst,
    )
    try:
        return asyncio.run(pool.run())
    except KeyboardInterrupt:  # before the pool's own handlers were in place: nothing started
        return 130


# -- the child's side ------------------------------------------------------------------------


def watch_supervisor(worker: Worker) -> None:
    """Stop ``worker`` gracefully once the pool's supervisor that started this process is
    gone (however it ended: the pipe it holds closes with it).

    Does nothing in a process no pool started. The variable naming the pipe is taken out of
    the environment, so that processes the worker's jobs start do not watch a pipe that is
    not theirs.
    """
    raw = os.environ.pop(PARENT_FD_ENV, None)
    if raw is None:
        return
    try:
        fd = int(raw)
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (ValueError, OSError):
        is_pipe = False
    if not is_pipe:
        log.warning("%s=%r is no pipe from a pool's supervisor: not watched", PARENT_FD_ENV, raw)
        return
    threading.Thread(
        target=_stop_when_closed, args=(fd, worker), name="naq-pool-watch", daemon=True
    ).start()


def _stop_when_closed(fd: int, worker: Worker) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 512):
            pass  # nothing is ever written: only the end matters
    log.warning("worker %s: the pool's supervisor is gone, stopping", worker.name)
    # A worker still starting may not take a stop yet: ask until it runs, then once more.
    # (RuntimeError: its event loop closed meanwhile, so it stopped already.)
    with contextlib.suppress(RuntimeError):
        while worker.status == WorkerStatus.STARTING:
            worker.request_stop()
            time.sleep(_STOP_RETRY)
        worker.request_stop()
