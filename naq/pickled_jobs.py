"""Opening a pickled job (``NAQ_JOB_SERIALIZER=pickle``): its function and arguments,
with ``allowed_modules`` still in force.

Under pickle a function travels by value when it has no importable name (a lambda, a
closure, a function of ``__main__``) and by reference otherwise; either way its job names
the module it was defined in. A worker with ``allowed_modules`` set checks that module
before unpickling anything, and unpickles without importing a module outside the list:
what a payload refers to (the function's module, its arguments' classes, the modules a
by-value function uses) is imported only if allowed, or if the worker has loaded it
already (that imports nothing).

This is a guard against running what the deployment did not mean to run, not a sandbox:
whoever can publish a pickled job can make ``loads`` run code, which is why pickle is for
trusted deployments only.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import sys
from collections.abc import Sequence
from typing import Any

from naq.errors import SecurityError, SerializationError
from naq.serialization import module_allowed


def load_call(
    data: bytes, module: str | None, allowed_modules: Sequence[str]
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The ``(function, args, kwargs)`` a pickled job carries.

    The function is a callable, or the string it was enqueued as (a task name or an
    import path, still to be resolved).

    Raises:
        SecurityError: ``module``, or a module the payload would import, is outside
            ``allowed_modules`` (checked before the import; for ``module``, before
            anything is unpickled).
        SerializationError: the payload can't be unpickled here (a module the worker
            can't import, or bytes that are not a pickled job).
    """
    # No module: a task enqueued by a name its producer had not registered (checked
    # when the name is resolved).
    if allowed_modules and module is not None and not module_allowed(module, allowed_modules):
        raise SecurityError(
            f"module {module!r} is not in allowed_modules ({', '.join(allowed_modules)}); "
            "refused before unpickling (a function sent by value counts as from the "
            "module it was defined in: __main__ for a script's)"
        )
    try:
        if allowed_modules:
            call = _AllowedModulesUnpickler(data, allowed_modules).load()
        else:
            call = pickle.loads(data)  # noqa: S301 - only reached with NAQ_JOB_SERIALIZER=pickle
        function, args, kwargs = call
    except SecurityError:
        raise
    except Exception as exc:
        raise SerializationError(f"cannot unpickle the job: {type(exc).__name__}: {exc}") from exc
    if allowed_modules and module is None and not isinstance(function, str):
        raise SecurityError("the pickled job's function names no module; refused")
    return function, tuple(args), dict(kwargs)


def _cloudpickle_subimport() -> Any:
    # cloudpickle sends a module a by-value function uses as a call to its ``subimport``.
    with contextlib.suppress(ImportError):
        import cloudpickle.cloudpickle

        return cloudpickle.cloudpickle.subimport
    return None


class _AllowedModulesUnpickler(pickle.Unpickler):
    """Unpickles without importing a module outside ``allowed_modules``."""

    def __init__(self, data: bytes, allowed_modules: Sequence[str]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed_modules
        # Imported first, so its reconstructors are found without an import of their own.
        self._subimport = _cloudpickle_subimport()

    def find_class(self, module: str, name: str) -> Any:
        self._check(module)
        found = super().find_class(module, name)
        if found is self._subimport and found is not None:
            return self._checked_import
        return found

    def _checked_import(self, name: str) -> Any:
        self._check(name)
        return importlib.import_module(name)

    def _check(self, module: str) -> None:
        if module in sys.modules or module_allowed(module, self._allowed):
            return
        raise SecurityError(
            f"the pickled job needs module {module!r}, which is not in allowed_modules "
            f"({', '.join(self._allowed)}); refused before import"
        )
