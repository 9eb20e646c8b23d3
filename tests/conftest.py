"""Shared fixtures.

Tests that talk to NATS ask for ``nats_url`` (or ``nats_server``): one real nats-server with
JetStream is started for the whole session, on a free port with a temporary store. Isolation between
tests comes from ``NAQ_PREFIX``, unique per test, which namespaces every stream, subject and bucket.
Unit tests ask for neither, and the server is never started for them.

Tests that kill or restart the server use ``fresh_server`` so they cannot disturb the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from naq.server import EmbeddedServer

# Fixtures whose use means "this test talks to the session server".
_SERVER_FIXTURES = frozenset({"nats_url", "nats_server"})


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The session's nats-server (JetStream on, file store in a temp dir)."""
    base = tmp_path_factory.mktemp("nats")
    server = EmbeddedServer(data_dir=base / "store", log_file=base / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedServer) -> str:
    """URL of the session's nats-server."""
    return nats_server.url


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A nats-server of this test's own, for tests that kill or restart it."""
    server = EmbeddedServer(data_dir=tmp_path / "store", log_file=tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def naq_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Give every test its own ``NAQ_PREFIX``; point ``NAQ_NATS_URL`` at the server it uses.

    ``fresh_server`` wins over the session server, so code under test in a fault test talks to the
    server the test kills. Returns the prefix.
    """
    prefix = "t" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("NAQ_PREFIX", prefix)
    if "fresh_server" in request.fixturenames:
        fresh: EmbeddedServer = request.getfixturevalue("fresh_server")
        monkeypatch.setenv("NAQ_NATS_URL", fresh.url)
    elif _SERVER_FIXTURES.intersection(request.fixturenames):
        # Looked up lazily so tests that don't need NATS never start the server.
        server: EmbeddedServer = request.getfixturevalue("nats_server")
        monkeypatch.setenv("NAQ_NATS_URL", server.url)
    return prefix
