"""How functions, arguments and results travel.

The default serializer is JSON (msgspec): the function travels as an import
path (``package.module:qualname``) or as a registered task name, never as code,
and workers import only what ``allowed_modules`` permits, checking before the
import. ``pickle`` (cloudpickle) is an explicit opt-in for trusted deployments.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from naq.errors import ConfigurationError, SecurityError, SerializationError

_TASKS: dict[str, TaskInfo] = {}


@dataclass(frozen=True)
class TaskInfo:
    """A function registered with :func:`task`, with its default job options."""

    name: str
    func: Callable[..., Any]
    module: str
    options: dict[str, Any] = field(default_factory=dict)


def task(
    name: str | None = None, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function under a stable name, with default job options.

    ``@naq.task(name="reports.send", max_retries=3)`` lets producers enqueue
    ``"reports.send"`` without importing the function; workers find it once the
    module defining it is imported (``module_paths``, or the module sent along
    by a producer that did import it).

    Raises:
        ConfigurationError: the name is already taken by another function.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        task_name = name or f"{func.__module__}.{func.__qualname__}"
        if not isinstance(task_name, str) or not task_name or ":" in task_name:
            raise ConfigurationError(f"task name {task_name!r} must be a non-empty str without ':'")
        existing = _TASKS.get(task_name)
        if existing is not None and _same_function(existing.func, func) is False:
            raise ConfigurationError(
                f"task name {task_name!r} is already registered for {existing.module}:"
                f"{existing.func.__qualname__}"
            )
        info = TaskInfo(task_name, func, func.__module__, dict(options))
        _TASKS[task_name] = info
        func.__naq_task__ = info  # type: ignore[attr-defined]
        return func

    return register


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # Re-importing a module (e.g. pytest, reload) registers an equal function again.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def registered_task(name: str) -> TaskInfo | None:
    """The task registered under ``name``, if any."""
    return _TASKS.get(name)


def task_info(func: Any) -> TaskInfo | None:
    """Task registration of ``func`` (registered with :func:`task`), if any."""
    return getattr(func, "__naq_task__", None)


#: What the refusals of a function that can't travel as a name add: the other way to send it.
BY_VALUE_HINT = (
    " (Or, on a trusted deployment, set NAQ_JOB_SERIALIZER=pickle on producer and workers:"
    " functions then travel by value.)"
)


def function_reference(func: Any, *, by_value: bool = False) -> tuple[str, str | None]:
    """``(reference, module)`` naming ``func`` so a worker can find it again.

    ``func`` may be a callable or a string: an import path ``module:qualname``
    or a registered task name. With ``by_value`` (the pickle serializer, which
    sends the function itself) any callable is accepted: the reference is then
    a label for listings, ``module:qualname`` of where it was defined
    (``__main__:main.<locals>.<lambda>``), and the module is the one
    ``allowed_modules`` is checked against.

    Raises:
        SerializationError: without ``by_value``: lambdas, closures, nested
            functions, functions defined in ``__main__``, bound methods of
            instances and callables without an importable name, with what to
            do instead.
    """
    if isinstance(func, str):
        if ":" in func:
            path_module, _, path_name = func.partition(":")
            if not path_module or not path_name:
                raise SerializationError(f"function path {func!r} must look like 'module:function'")
            return func, path_module
        info = registered_task(func)
        return func, info.module if info else None
    info = task_info(func)
    if info is not None:
        return info.name, info.module
    if not callable(func):
        raise SerializationError(f"{func!r} is not callable and not a function path")
    qualname = getattr(func, "__qualname__", None)
    module_name: str | None = getattr(func, "__module__", None)
    if by_value:
        # A callable object without a name of its own (a functools.partial, an instance
        # with __call__) is labelled by its type.
        named = func if isinstance(qualname, str) and isinstance(module_name, str) else type(func)
        return f"{named.__module__}:{named.__qualname__}", named.__module__
    if inspect.ismethod(func) and not inspect.isclass(func.__self__):
        raise SerializationError(
            f"{func!r} is a method bound to an instance; the instance can't travel as JSON. "
            "Enqueue a module-level function (or a @staticmethod/@classmethod) and pass "
            "the data it needs as arguments." + BY_VALUE_HINT
        )
    if not qualname or not module_name:
        raise SerializationError(
            f"{func!r} has no importable name; enqueue a module-level function "
            "or register one with @naq.task." + BY_VALUE_HINT
        )
    if qualname == "<lambda>" or "<lambda>" in qualname:
        raise SerializationError(
            "lambdas can't be enqueued: workers import the function by name and a lambda "
            "has none. Define a module-level function (def ...) and enqueue it instead."
            + BY_VALUE_HINT
        )
    if "<locals>" in qualname:
        raise SerializationError(
            f"{qualname!r} is defined inside another function (a closure), so workers can't "
            "import it. Move it to module level and pass what it captured as arguments."
            + BY_VALUE_HINT
        )
    if module_name == "__main__":
        raise SerializationError(
            f"{qualname!r} is defined in __main__, which workers can't import. Move it to "
            "an importable module (e.g. tasks.py) and enqueue it from there." + BY_VALUE_HINT
        )
    return f"{module_name}:{qualname}", module_name


def module_allowed(module: str, allowed: Sequence[str]) -> bool:
    """Whether ``module`` is inside one of the ``allowed`` prefixes (empty = everything)."""
    if not allowed:
        return True
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed)


def resolve_function(
    reference: str, module_hint: str | None, allowed_modules: Sequence[str]
) -> Callable[..., Any]:
    """Find the callable a job names, importing its module if allowed.

    Raises:
        SecurityError: the module is outside ``allowed_modules`` (nothing imported).
        SerializationError: the module or attribute does not exist.
    """
    if ":" in reference:
        module_name, _, qualname = reference.partition(":")
    else:
        info = registered_task(reference)
        if info is not None:
            return info.func
        if not module_hint:
            raise SerializationError(
                f"task {reference!r} is not registered in this worker; import its module "
                "(worker module_paths) or enqueue it by 'module:function'"
            )
        module_name, qualname = module_hint, ""
    if not module_allowed(module_name, allowed_modules):
        raise SecurityError(
            f"module {module_name!r} is not in allowed_modules ({', '.join(allowed_modules)}); "
            "refused before import"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError or an error raised by the module itself
        raise SerializationError(f"cannot import module {module_name!r}: {exc}") from exc
    if not qualname:
        info = registered_task(reference)
        if info is None:
            raise SerializationError(
                f"task {reference!r} is not registered by module {module_name!r}"
            )
        return info.func
    target: Any = module
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SerializationError(
                f"module {module_name!r} has no function {qualname!r}"
            ) from None
    target = getattr(target, "__wrapped_naq__", target)
    if not callable(target):
        raise SerializationError(f"{reference!r} is not callable")
    return target


def _enc_hook(value: Any) -> Any:
    raise NotImplementedError(type(value))


_json_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def check_encodable(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Raise :class:`SerializationError` if the arguments have no JSON form.

    Raises:
        SerializationError: naming the argument and its type.
    """
    try:
        _json_encoder.encode((args, kwargs))
        if all(isinstance(key, str) for key in kwargs):
            return
    except (TypeError, NotImplementedError, OverflowError, msgspec.EncodeError):
        pass  # found below, one by one, to name the culprit
    for index, value in enumerate(args):
        _check_value(value, f"argument {index}")
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise SerializationError(f"keyword argument name {key!r} must be a str")
        _check_value(value, f"keyword argument {key!r}")


def _check_value(value: Any, label: str) -> None:
    try:
        _json_encoder.encode(value)
    except (TypeError, NotImplementedError, OverflowError, msgspec.EncodeError) as exc:
        raise SerializationError(
            f"{label} of type {type(value).__name__} can't be sent as JSON ({exc}); pass "
            "JSON types, datetimes, bytes, dataclasses or msgspec Structs, or opt in to "
            "NAQ_JOB_SERIALIZER=pickle for trusted deployments"
        ) from None


def pickle_dumps(value: Any) -> bytes:
    """cloudpickle ``value`` (pickle serializer only)."""
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "NAQ_JOB_SERIALIZER=pickle needs cloudpickle: pip install 'naq[pickle]'"
        ) from exc
    warnings.warn(
        "naq is using the pickle serializer: only run workers on queues no untrusted "
        "party can publish to",
        stacklevel=3,
    )
    try:
        return cloudpickle.dumps(value)
    except Exception as exc:
        raise SerializationError(f"cannot pickle {type(value).__name__}: {exc}") from exc


def stored_result(serializer: str, value: Any) -> tuple[Any, bytes | None]:
    """``(result, pickled)``: a job's return value as its result record holds it.

    Under pickle the value travels cloudpickled (any Python object); under JSON as
    itself (checked when the record is encoded).
    """
    if serializer == "pickle":
        return None, pickle_dumps(value)
    return value, None


def pickle_loads(data: bytes) -> Any:
    """Unpickle ``data``; callers check first that pickle is enabled."""
    import pickle

    return pickle.loads(data)  # noqa: S301 - only reached with NAQ_JOB_SERIALIZER=pickle


@functools.lru_cache(maxsize=1024)
def _parameter_types(func: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]] | None:
    try:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func)
    except Exception:
        return None
    hints.pop("return", None)
    converters = {
        name: hint
        for name, hint in hints.items()
        if hint is not Any and name in signature.parameters
    }
    return signature, converters


def convert_arguments(
    func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Turn JSON-decoded arguments back into the types the function annotates.

    ``datetime``, ``bytes``, ``UUID``, dataclasses and msgspec Structs travel as
    JSON strings and objects; an annotated parameter gets its type back.
    Parameters without annotations, and values that don't fit their
    annotation, are passed as they arrived: the function sees what the
    producer sent, as it would in a local call.
    """
    try:
        found = _parameter_types(func)
    except TypeError:  # unhashable callable
        return args, kwargs
    if not found or not found[1]:
        return args, kwargs
    signature, types = found
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return args, kwargs  # the call itself will raise a clear TypeError
    for name, value in bound.arguments.items():
        hint = types.get(name)
        if hint is None:
            continue
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            bound.arguments[name] = tuple(_convert(v, hint) for v in value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            bound.arguments[name] = {k: _convert(v, hint) for k, v in value.items()}
        else:
            bound.arguments[name] = _convert(value, hint)
    return list(bound.args), dict(bound.kwargs)


def _convert(value: Any, hint: Any) -> Any:
    try:
        return msgspec.convert(value, hint, strict=False)
    except (msgspec.ValidationError, TypeError, ValueError):
        return value
