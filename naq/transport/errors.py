"""nats-py's errors turned into naq's: the one place that knows both.

Every call into nats-py in :mod:`naq.transport` runs inside :class:`Mapped` (or hands
what it caught to :func:`map_error`), so what reaches the code above is always a
:class:`~naq.errors.NaqException`: a :class:`~naq.errors.NaqConnectionError` when NATS
or JetStream can't be reached, a :class:`JetStreamError` (or one of its kinds) when
JetStream refused a request, a :class:`PublishError` when it refused a publish.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import nats.errors
import nats.js.errors

from naq.errors import NaqConnectionError, NaqException
from naq.settings import Settings

#: JetStream API error code: "JetStream system temporarily unavailable" (an election).
ERR_TEMPORARILY_UNAVAILABLE = 10008
#: "stream not found": while a cluster settles, also the answer about a stream another
#: process has just created, from a server that learns of it a moment later.
ERR_STREAM_NOT_FOUND = 10059
#: "no suitable peers for placement": a replicated stream asked for before every server of
#: a forming cluster has joined.
ERR_NO_SUITABLE_PEERS = 10005
#: JetStream API error codes: wrong last sequence (compare-and-set lost), as a value and
#: as the constant of a KV create.
ERR_WRONG_LAST_SEQUENCE = 10071
ERR_WRONG_LAST_SEQUENCE_CONSTANT = 10164
#: JetStream's answer to deleting a message that is not there (deleted, or never stored).
ERR_MSG_DELETE_FAILED = 10057


class PublishError(NaqException):
    """JetStream refused a publish (stream full, wrong last sequence, ...)."""

    def __init__(self, description: str, code: int | None, err_code: int | None) -> None:
        super().__init__(description)
        self.code = code
        self.err_code = err_code


class JetStreamError(NaqException):
    """JetStream refused an API request; ``code`` and ``err_code`` say why."""

    def __init__(self, message: str, code: int | None = None, err_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.err_code = err_code


class NotFound(JetStreamError):
    """The stream, consumer, message or key asked for is not there."""


class RevisionConflict(JetStreamError):
    """A compare-and-set write found its key at another revision (or, for a create,
    already there)."""


def describe_servers(settings: Settings) -> str:
    """The server URLs as one string for messages."""
    return ",".join(settings.servers)


def unreachable_message(settings: Settings, reason: str = "") -> str:
    """The one line a user sees when NATS can't be reached."""
    detail = f" ({reason})" if reason else ""
    return (
        f"cannot connect to NATS at {describe_servers(settings)}{detail}: start one with "
        "'naq server' or point NAQ_NATS_URL / --nats-url at a running server"
    )


def _is_conflict(exc: nats.js.errors.APIError, err_code: int | None) -> bool:
    if isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
        return True
    if err_code in (ERR_WRONG_LAST_SEQUENCE, ERR_WRONG_LAST_SEQUENCE_CONSTANT):
        return True
    return "wrong last sequence" in str(exc)


def map_error(exc: BaseException, settings: Settings) -> NaqException:
    """Turn a nats-py error into the naq error a user should see (a naq error stays)."""
    if isinstance(exc, NaqException):
        return exc
    servers = describe_servers(settings)
    if isinstance(exc, (nats.errors.ConnectionClosedError, nats.errors.NoServersError)):
        return NaqConnectionError(unreachable_message(settings, "connection closed"))
    if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError)):
        return NaqConnectionError(
            f"NATS at {servers} did not answer in time (is JetStream enabled? "
            "run nats-server with -js, or 'naq server')"
        )
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return NaqConnectionError(
            f"JetStream is not available at {servers}: run nats-server with -js"
        )
    if isinstance(exc, nats.errors.NoRespondersError):
        return NaqConnectionError(
            f"JetStream is not enabled at {servers}: run nats-server with -js"
        )
    # An API error's str names its code and description; its repr names neither.
    message = f"NATS error: {str(exc) or repr(exc)}"
    if isinstance(exc, nats.js.errors.APIError):
        # The KV errors are API errors that never set the API error's codes.
        code, err_code = getattr(exc, "code", None), getattr(exc, "err_code", None)
        kind = (
            RevisionConflict
            if _is_conflict(exc, err_code)
            else NotFound
            if isinstance(exc, nats.js.errors.NotFoundError)
            else JetStreamError
        )
        return kind(message, code, err_code)
    return NaqException(message)


def is_settling(exc: BaseException) -> bool:
    """Whether a JetStream API failure is what a cluster electing leaders answers (asked
    only while ensuring a stream, consumer or bucket exists)."""
    if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError)):
        return True
    return isinstance(exc, nats.js.errors.APIError) and getattr(exc, "err_code", None) in (
        ERR_TEMPORARILY_UNAVAILABLE,
        ERR_STREAM_NOT_FOUND,
        ERR_NO_SUITABLE_PEERS,
    )


class Mapped:
    """``with mapped:`` raises the naq error for whatever nats-py raised inside.

    It holds no state of its own beyond the settings its messages name, so one instance
    serves every call of a connection, concurrently too.
    """

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Cancellation and the like (not Exceptions) pass through, as naq's own errors do.
        if isinstance(exc, Exception) and not isinstance(exc, NaqException):
            raise map_error(exc, self.settings) from exc
