"""Authenticated and encrypted connections against real nats-servers on 127.0.0.1.

Four servers are started once for the module, each from a config file (``-c``):

* ``users``: a user/password user and an nkey user,
* ``token``: token authentication,
* ``tls``: TLS with a server certificate signed by a CA made for this run,
* ``mtls``: TLS that also requires a client certificate signed by that CA.

With the right ``NAQ_NATS_*`` variables a job goes all the way (enqueue, a worker runs it, the
result is fetched) through the library and the CLI. With wrong ones the library raises a
:class:`naq.NaqConnectionError` naming the server, and the CLI prints one line, no traceback.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nkeys  # type: ignore[import-untyped]  # ships no type hints
import pytest

import naq
from naq import Queue
from naq.server import EmbeddedServer
from naq.transport.connection import CONNECT_TIMEOUT
from tests import jobs
from tests.helpers import naq_cli, running_worker
from tests.tls_certs import Pki, make_pki

Q = "secured"

#: Every variable that carries credentials or TLS files: cleared before each case, so one case's
#: credentials can never make another case pass.
CREDENTIAL_VARS = (
    "NAQ_NATS_USER",
    "NAQ_NATS_PASSWORD",
    "NAQ_NATS_TOKEN",
    "NAQ_NATS_CREDS",
    "NAQ_NATS_NKEY_SEED",
    "NAQ_NATS_TLS_CA",
    "NAQ_NATS_TLS_CERT",
    "NAQ_NATS_TLS_KEY",
)


@dataclass(frozen=True)
class Access:
    """One way of reaching a secured server: its URL and the ``NAQ_*`` variables to use."""

    url: str
    env: Mapping[str, str] = field(default_factory=dict)

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this process use this access (its URL and only these credentials)."""
        for name in CREDENTIAL_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NAQ_NATS_URL", self.url)
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def settings(self) -> naq.Settings:
        """Settings with this access (prefix and the rest from the environment)."""
        base = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        return naq.Settings.from_env({**base, **self.env, "NAQ_NATS_URL": self.url})

    def cli_env(self) -> dict[str, str]:
        """The environment of a ``naq`` subprocess using this access."""
        base = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        return {**base, **self.env, "NAQ_NATS_URL": self.url, "COLUMNS": "200"}


@dataclass(frozen=True)
class Secured:
    """The module's servers, with working and failing ways to reach them."""

    good: dict[str, Access]
    refused: dict[str, Access]
    bad_tls: dict[str, Access]


def _user_seed() -> str:
    """A fresh nkey user seed (``SU...``)."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode()


def _public_key(seed: str) -> str:
    public: bytes = nkeys.from_seed(seed.encode()).public_key
    return public.decode()


def _start(base: Path, name: str, config: str) -> EmbeddedServer:
    conf = base / f"{name}.conf"
    conf.write_text(config)
    server = EmbeddedServer(
        data_dir=base / f"{name}-store",
        extra_args=["-c", str(conf)],
        log_file=base / f"{name}.log",
    )
    return server.start()


def _tls_block(pki: Pki, *, verify_clients: bool) -> str:
    lines = [f'cert_file: "{pki.server_cert}"', f'key_file: "{pki.server_key}"']
    if verify_clients:
        lines += [f'ca_file: "{pki.ca_cert}"', "verify: true"]
    return "tls {\n  " + "\n  ".join(lines) + "\n}\n"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """Start the four secured servers once for the module; stop them at its end."""
    base = tmp_path_factory.mktemp("secured")
    pki = make_pki(base / "pki")
    # A second, unrelated CA with its own client certificate: what an attacker or a
    # misconfigured client would hold.
    stranger = make_pki(base / "stranger", name="stranger")
    seed = _user_seed()
    seed_file = base / "user.nk"
    seed_file.write_text(seed + "\n")  # as `nk -gen user` writes it
    password = "s3cret-" + os.urandom(4).hex()
    token = "tok-" + os.urandom(8).hex()

    servers: list[EmbeddedServer] = []
    try:
        users = _start(
            base,
            "users",
            "authorization {\n  users = [\n"
            f'    {{user: "alice", password: "{password}"}}\n'
            f'    {{nkey: "{_public_key(seed)}"}}\n'
            "  ]\n}\n",
        )
        servers.append(users)
        tokened = _start(base, "token", f'authorization {{ token: "{token}" }}\n')
        servers.append(tokened)
        tls = _start(base, "tls", _tls_block(pki, verify_clients=False))
        servers.append(tls)
        mtls = _start(base, "mtls", _tls_block(pki, verify_clients=True))
        servers.append(mtls)

        ca = {"NAQ_NATS_TLS_CA": str(pki.ca_cert)}
        yield Secured(
            good={
                "user-password": Access(
                    users.url, {"NAQ_NATS_USER": "alice", "NAQ_NATS_PASSWORD": password}
                ),
                "token": Access(tokened.url, {"NAQ_NATS_TOKEN": token}),
                "nkey-seed": Access(users.url, {"NAQ_NATS_NKEY_SEED": seed}),
                "nkey-seed-file": Access(users.url, {"NAQ_NATS_NKEY_SEED": str(seed_file)}),
                # tls:// says "TLS or nothing" in the URL itself.
                "tls-ca": Access(tls.url.replace("nats://", "tls://"), ca),
                "tls-client-cert": Access(
                    mtls.url,
                    {
                        **ca,
                        "NAQ_NATS_TLS_CERT": str(pki.client_cert),
                        "NAQ_NATS_TLS_KEY": str(pki.client_key),
                    },
                ),
            },
            refused={
                "wrong-password": Access(
                    users.url, {"NAQ_NATS_USER": "alice", "NAQ_NATS_PASSWORD": "not-" + password}
                ),
                "no-credentials": Access(users.url),
                "wrong-token": Access(tokened.url, {"NAQ_NATS_TOKEN": "not-" + token}),
                "unknown-nkey": Access(users.url, {"NAQ_NATS_NKEY_SEED": _user_seed()}),
            },
            bad_tls={
                "untrusted-server-ca": Access(tls.url, {"NAQ_NATS_TLS_CA": str(stranger.ca_cert)}),
                "missing-client-cert": Access(mtls.url, ca),
                "client-cert-from-another-ca": Access(
                    mtls.url,
                    {
                        **ca,
                        "NAQ_NATS_TLS_CERT": str(stranger.client_cert),
                        "NAQ_NATS_TLS_KEY": str(stranger.client_key),
                    },
                ),
            },
        )
    finally:
        for server in servers:
            server.stop()


# -- credentials that work ---------------------------------------------------------------------

GOOD = (
    "user-password",
    "token",
    "nkey-seed",
    "nkey-seed-file",
    "tls-ca",
    "tls-client-cert",
)


@pytest.mark.parametrize("mode", GOOD)
async def test_job_runs_end_to_end_with_credentials(
    mode: str, secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Library and CLI, given the credentials only through ``NAQ_*`` variables, enqueue a job,
    a worker runs it and its result is fetched."""
    access = secured.good[mode]
    access.apply(monkeypatch)
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.add, 2, 3)
        assert await job.result(timeout=10) == 5
        assert await naq.fetch_job_result(job.job_id) == 5
        # The CLI in another process, with the same variables: enqueue, wait for the
        # in-process worker to run it, print the outcome.
        enqueued = await naq_cli(
            *("enqueue", "tests.jobs:add", "20", "22", "--queue", Q, "--wait", "10", "--json"),
            env=access.cli_env(),
        )
    outcome = enqueued.json()
    assert (outcome["status"], outcome["result"]) == ("completed", 42), enqueued
    assert await naq.fetch_job_result(outcome["job_id"]) == 42


# -- credentials that don't ------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["wrong-password", "no-credentials", "wrong-token", "unknown-nkey"]
)
async def test_refused_credentials_raise_a_clear_connection_error(
    case: str, secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer and a worker with credentials the server refuses get a NaqConnectionError that
    names the server and says the credentials were refused, at once (not after retrying)."""
    access = secured.refused[case]
    access.apply(monkeypatch)
    started = time.monotonic()
    with pytest.raises(naq.NaqConnectionError) as producer:
        await Queue(Q).enqueue(jobs.add, 1, 1)
    with pytest.raises(naq.NaqConnectionError) as worker:
        await naq.Worker(Q, install_signal_handlers=False).run()
    elapsed = time.monotonic() - started
    for caught in (producer, worker):
        message = str(caught.value)
        assert access.url in message, message
        assert "credentials" in message, message
    # A refusal is an answer: retrying until the connect timeout would only hide it.
    assert elapsed < CONNECT_TIMEOUT, f"took {elapsed:.1f}s"


async def test_failed_tls_handshakes_raise_a_clear_connection_error_at_once(
    secured: Secured,
) -> None:
    """An untrusted server certificate, a missing client certificate and a client certificate
    from a CA the server doesn't trust each give a NaqConnectionError naming the server and the
    TLS problem, at once, without telling the user to start a server that is running."""

    async def attempt(access: Access) -> tuple[BaseException | None, float]:
        started = time.monotonic()
        try:
            await Queue(Q, settings=access.settings()).enqueue(jobs.add, 1, 1)
        except naq.NaqException as exc:
            return exc, time.monotonic() - started
        return None, time.monotonic() - started

    # Concurrently: each case costs the same wall time as one.
    cases = sorted(secured.bad_tls)
    outcomes = await asyncio.gather(*(attempt(secured.bad_tls[case]) for case in cases))
    # Every case is checked before failing, so a failure shows all of them.
    problems: list[str] = []
    for case, (error, elapsed) in zip(cases, outcomes, strict=True):
        access = secured.bad_tls[case]
        if not isinstance(error, naq.NaqConnectionError):
            problems.append(f"{case}: expected NaqConnectionError, got {error!r}")
            continue
        message = str(error)
        if access.url not in message:
            problems.append(f"{case}: server URL missing from {message!r}")
        if not re.search(r"tls|ssl|certificate", message, re.IGNORECASE):
            problems.append(f"{case}: TLS problem not named in {message!r}")
        # The server is up and answered: advice to start one sends the user the wrong way.
        if "naq server" in message:
            problems.append(f"{case}: says to start a server that is running: {message!r}")
        # A failed handshake won't succeed on retry: waiting out the timeout only hides it.
        if elapsed >= CONNECT_TIMEOUT - 1:
            problems.append(f"{case}: took {elapsed:.1f}s (connect timeout {CONNECT_TIMEOUT}s)")
    assert not problems, "\n".join(problems)


async def test_cli_reports_wrong_credentials_in_one_line(secured: Secured) -> None:
    """``naq queues``, ``naq enqueue`` and ``naq worker`` with refused credentials or a failed TLS
    handshake: non-zero exit, one line on stderr naming the server, no traceback."""
    # Each case once, the commands spread over them: each command connects through its own code
    # path (monitor, queue, worker), and fewer processes keep the test quick on a small machine.
    commands: dict[str, tuple[str, ...]] = {
        "wrong-password": ("queues",),
        "no-credentials": ("enqueue", "tests.jobs:add", "1", "2"),
        "wrong-token": ("worker", Q, "--burst"),
        "unknown-nkey": ("queues",),
        "untrusted-server-ca": ("queues",),
        "missing-client-cert": ("enqueue", "tests.jobs:add", "1", "2"),
        "client-cert-from-another-ca": ("worker", Q),
    }
    every = {**secured.refused, **secured.bad_tls}
    assert set(commands) == set(every)
    calls = [(case, every[case], args) for case, args in commands.items()]

    results = await asyncio.gather(
        *(naq_cli(*args, env=access.cli_env()) for _, access, args in calls)
    )
    # Every case is checked before failing, so a failure shows all of them.
    problems: list[str] = []
    for (case, access, _), result in zip(calls, results, strict=True):
        try:
            assert result.out == ""
            result.assert_one_line_error(access.url)
            if case in secured.refused:
                assert "credentials" in result.err
            else:
                assert re.search(r"tls|ssl|certificate", result.err, re.IGNORECASE)
                # The server is up and answered: advice to start one misleads.
                assert "naq server" not in result.err
        except AssertionError:
            problems.append(f"{case}: {result}")
    assert not problems, "\n".join(problems)


async def test_missing_tls_file_is_named(secured: Secured, tmp_path: Path) -> None:
    """A TLS file that doesn't exist is a ConfigurationError naming the file, in the library and
    on the CLI (one line), before anything is sent."""
    missing = tmp_path / "no-such-ca.pem"
    tls = secured.good["tls-ca"]
    access = Access(tls.url, {"NAQ_NATS_TLS_CA": str(missing)})
    with pytest.raises(naq.ConfigurationError) as caught:
        await Queue(Q, settings=access.settings()).enqueue(jobs.add, 1, 1)
    assert str(missing) in str(caught.value)
    result = await naq_cli("queues", env=access.cli_env())
    result.assert_one_line_error(str(missing))
