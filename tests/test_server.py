"""The embedded nats-server: start, readiness, stop, crash and recovery, binary lookup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from naq.errors import ConfigurationError, NaqConnectionError
from naq.server import EmbeddedServer, _port_accepts, _read_info, find_nats_server, free_port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def test_session_server_serves_jetstream(nats_server: EmbeddedServer) -> None:
    assert nats_server.running
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().account_info()
        assert info is not None
    finally:
        await nc.close()


def test_naq_env_points_at_session_server(
    nats_url: str, naq_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert os.environ["NAQ_NATS_URL"] == nats_url
    assert os.environ["NAQ_PREFIX"] == naq_env
    assert naq_env.isidentifier() and naq_env.isascii()


def test_naq_env_without_server_sets_only_prefix(naq_env: str) -> None:
    assert os.environ["NAQ_PREFIX"] == naq_env


def test_stop_leaves_no_process_and_removes_owned_dir() -> None:
    server = EmbeddedServer()
    server.start()
    pid = server.pid
    data_dir = server.data_dir
    assert pid is not None and _pid_alive(pid)
    assert server.url == f"nats://127.0.0.1:{server.port}"

    server.stop()
    assert not server.running
    assert server.pid is None
    assert not _pid_alive(pid)
    assert not data_dir.exists()
    server.stop()  # idempotent


def test_context_manager(tmp_path: Path) -> None:
    with EmbeddedServer(data_dir=tmp_path / "store") as server:
        pid = server.pid
        assert server.running
    assert pid is not None and not _pid_alive(pid)
    assert (tmp_path / "store").exists()  # a caller's data dir is never deleted


async def test_kill_then_start_keeps_stream(fresh_server: EmbeddedServer) -> None:
    port, data_dir = fresh_server.port, fresh_server.data_dir
    nc = await nats.connect(fresh_server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.one", b"hello")
    finally:
        await nc.close()

    old_pid = fresh_server.pid
    fresh_server.kill()
    assert not fresh_server.running
    assert old_pid is not None and not _pid_alive(old_pid)

    fresh_server.start()
    assert (fresh_server.port, fresh_server.data_dir) == (port, data_dir)
    nc = await nats.connect(fresh_server.url)
    try:
        info = await nc.jetstream().stream_info("KEEP")
        assert info.state.messages == 1
    finally:
        await nc.close()


async def test_restart_same_port(fresh_server: EmbeddedServer) -> None:
    port = fresh_server.port
    fresh_server.restart()
    assert fresh_server.running and fresh_server.port == port
    nc = await nats.connect(fresh_server.url)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


def test_start_fails_clearly_when_port_taken(nats_server: EmbeddedServer, tmp_path: Path) -> None:
    log = tmp_path / "clash.log"
    clash = EmbeddedServer(port=nats_server.port, data_dir=tmp_path / "s", log_file=log)
    with pytest.raises(NaqConnectionError) as excinfo:
        clash.start(timeout=5)
    assert str(nats_server.port) in str(excinfo.value)
    assert not clash.running
    assert nats_server.running


def test_start_failure_names_port_and_log(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    bad = EmbeddedServer(
        data_dir=tmp_path / "s", log_file=log, extra_args=["--no-such-option-for-naq"]
    )
    with pytest.raises(NaqConnectionError) as excinfo:
        bad.start(timeout=5)
    message = str(excinfo.value)
    assert str(bad.port) in message and str(log) in message
    assert not bad.running
    assert log.read_bytes()  # the server's complaint was captured


def test_find_nats_server_returns_executable() -> None:
    path = find_nats_server()
    assert os.path.isfile(path) and os.access(path, os.X_OK)


def test_find_nats_server_honours_bad_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAQ_NATS_SERVER_BIN", "/nonexistent")
    with pytest.raises(ConfigurationError, match="/nonexistent"):
        find_nats_server()


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_foreground_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    port = free_port()
    code = (
        "import sys; from naq.server import run_foreground; "
        f"sys.exit(run_foreground('127.0.0.1', {port}, {str(tmp_path / 'store')!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not _read_info("127.0.0.1", port, timeout=0.5):
            assert proc.poll() is None, "run_foreground exited early"
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.05)
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert not _port_accepts("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
