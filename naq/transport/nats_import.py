"""Importing nats-py without paying for aiohttp up front.

nats-py imports aiohttp at module level, for its WebSocket transport only.
aiohttp is a large package: about 150 ms of every naq process's start-up (a
worker, a CLI command run from a script) for a transport few deployments use.
:func:`import_nats` imports nats-py with a stand-in for aiohttp that imports
the real package the first time nats-py touches it (a ``ws://`` server URL).
Everything else that imports aiohttp gets the real package, as usual.
``NAQ_PLAIN_CLIENT=1`` imports nats-py as it is.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

from naq.errors import ConfigurationError
from naq.settings import get_settings

#: The package deferred.
DEFERRED = "aiohttp"


class _Deferred(types.ModuleType):
    """Stands for a module until one of its attributes is read, then imports it."""

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the stand-in lacks: everything but its own identity.
        return getattr(importlib.import_module(self.__name__), name)


def _plain_client() -> bool:
    try:
        return get_settings().plain_client
    except ConfigurationError:
        return False  # reported to whatever uses the settings first


def import_nats() -> None:
    """Import nats-py (once), deferring aiohttp until a WebSocket transport needs it
    (unless the settings ask for a plain client)."""
    if "nats.aio.client" in sys.modules or DEFERRED in sys.modules:
        return
    if _plain_client():
        importlib.import_module("nats.aio.client")
        return
    stand_in = _Deferred(DEFERRED)
    # The import system reads ``__spec__`` of a module it finds in sys.modules; a spec of
    # its own keeps that read from importing the real package.
    stand_in.__spec__ = importlib.machinery.ModuleSpec(DEFERRED, None)
    sys.modules[DEFERRED] = stand_in
    try:
        importlib.import_module("nats.aio.client")
    finally:
        if sys.modules.get(DEFERRED) is stand_in:
            del sys.modules[DEFERRED]
