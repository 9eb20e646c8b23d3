"""What ``naq worker`` runs: the worker ``--app`` names (if any) with the command's flags
over it, and the objects ``--lifespan`` and ``--middleware`` name."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from naq.errors import ConfigurationError
from naq.worker import Worker

#: The options an ``--app`` settings object (a class, module or mapping) may give, by the
#: names ``naq.Worker`` takes them.
WORKER_OPTIONS = (
    "queues",
    "nats_url",
    "concurrency",
    "worker_name",
    "heartbeat_interval",
    "worker_ttl",
    "burst",
    "module_paths",
    "allowed_modules",
    "shutdown_grace",
    "ack_wait",
    "lifespan",
    "middleware",
    "max_jobs",
    "max_memory",
    "fair",
)


def import_object(path: str, flag: str) -> Any:
    """The object ``module:name`` names (``name`` may be dotted).

    Raises:
        ConfigurationError: the path is malformed, or its module or name is not found
            (``flag`` and the path are named).
    """
    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ConfigurationError(f"{flag} {path!r} must look like 'package.module:name'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or an error raised by the module itself
        raise ConfigurationError(
            f"{flag} {path!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in name.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"{flag} {path!r}: {module_name!r} has no {name!r}") from None
    return target


def middleware_from(path: str) -> object:
    """The middleware ``--middleware`` names: an instance, or a class made with no arguments."""
    target = import_object(path, "--middleware")
    if inspect.isclass(target):
        try:
            return target()
        except Exception as exc:
            raise ConfigurationError(
                f"--middleware {path!r}: {target.__name__}() failed: {type(exc).__name__}: {exc}"
            ) from None
    return target


def app_worker(path: str, overrides: dict[str, Any]) -> Worker:
    """The worker ``--app`` names, with ``overrides`` (the flags given beside it) applied.

    ``path`` names a :class:`naq.Worker`, a function returning one, or a settings object:
    a mapping, class or module whose attributes are Worker options (:data:`WORKER_OPTIONS`).
    """
    target = import_object(path, "--app")
    if callable(target) and not inspect.isclass(target) and not isinstance(target, Worker):
        target = target()
    if isinstance(target, Worker):
        return target.replace(**overrides)
    if isinstance(target, Mapping):
        options = dict(target)
        unknown = sorted(set(options) - set(WORKER_OPTIONS))
        if unknown:
            raise ConfigurationError(f"--app {path!r}: unknown worker option(s) {unknown}")
    else:
        options = {name: getattr(target, name) for name in WORKER_OPTIONS if hasattr(target, name)}
        if not options:
            raise ConfigurationError(
                f"--app {path!r} is a {type(target).__name__}: name a naq.Worker, or a settings "
                f"object with worker options ({', '.join(WORKER_OPTIONS)})"
            )
    return Worker(**{**options, **overrides})
