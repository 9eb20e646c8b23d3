"""KV buckets with naq's errors: reads that say "not there" with None, compare-and-set
writes that say "lost" with :class:`~naq.transport.errors.RevisionConflict`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nats.js.kv import KeyValue

from naq.transport.errors import Mapped, NotFound

#: KV operations that leave a key without a value.
GONE = ("DEL", "PURGE")


@dataclass(frozen=True)
class KVEntry:
    """A live key of a bucket: its value and the revision that wrote it."""

    key: str
    value: bytes
    revision: int


@dataclass(frozen=True)
class KVChange:
    """A key written (``value``) or removed (``value`` None) at ``revision``."""

    key: str
    value: bytes | None
    revision: int


class Changes:
    """The changes of a watched key (or keys), oldest first: :meth:`next` waits for one."""

    def __init__(self, watcher: Any, mapped: Mapped) -> None:
        self._watcher = watcher
        self._mapped = mapped

    async def next(self) -> KVChange:
        """The next change (what the bucket holds when the watch starts comes first)."""
        with self._mapped:
            while True:
                entry = await self._watcher.updates(timeout=None)
                if entry is None:  # the marker of "caught up": not a change
                    continue
                gone = entry.operation in GONE or not entry.value
                return KVChange(entry.key, None if gone else entry.value, entry.revision)


class Bucket:
    """One KV bucket of the connection (from :meth:`Resources.kv`)."""

    def __init__(self, kv: KeyValue, name: str, mapped: Mapped) -> None:
        self._kv = kv
        self._mapped = mapped
        #: The bucket's name.
        self.name = name

    async def get(self, key: str) -> KVEntry | None:
        """The live entry of ``key``; None when it was deleted, expired or never written."""
        try:
            with self._mapped:
                entry = await self._kv.get(key)
        except NotFound:
            return None
        if entry.value is None or entry.operation in GONE:
            return None
        return KVEntry(key, entry.value, int(entry.revision or 0))

    async def put(self, key: str, value: bytes) -> int:
        """Write ``key`` whatever it holds; its new revision."""
        with self._mapped:
            return int(await self._kv.put(key, value))

    async def create(self, key: str, value: bytes) -> int:
        """Write ``key`` only if it has no value; its revision.

        Raises:
            RevisionConflict: the key has a value.
        """
        with self._mapped:
            return int(await self._kv.create(key, value))

    async def update(self, key: str, value: bytes, last: int) -> int:
        """Write ``key`` only if it is still at revision ``last``; its new revision.

        Raises:
            RevisionConflict: it changed since.
        """
        with self._mapped:
            return int(await self._kv.update(key, value, last=last))

    async def delete(self, key: str, last: int | None = None) -> None:
        """Remove ``key`` (only if it is still at revision ``last``, if given).

        Raises:
            RevisionConflict: it changed since ``last``.
        """
        with self._mapped:
            await self._kv.delete(key, last=last)

    async def purge(self, key: str) -> None:
        """Remove ``key`` and every revision of it."""
        with self._mapped:
            await self._kv.purge(key)

    @contextlib.asynccontextmanager
    async def watch(self, key: str = ">") -> AsyncIterator[Changes]:
        """Watch ``key`` (wildcards allowed; every key by default) while the block runs."""
        with self._mapped:
            watcher = await self._kv.watch(key)
        try:
            yield Changes(watcher, self._mapped)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
