"""Retry policy: how long to wait before attempt N, and whether to retry at all.

Pure functions; the worker and :meth:`naq.Job.get_retry_delay` share them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from naq.errors import ConfigurationError

STRATEGIES = ("fixed", "linear", "exponential")
#: Longest delay naq will wait between attempts (one day); guards against overflow.
MAX_RETRY_DELAY = 86_400.0


def validate_policy(
    max_retries: object, retry_delay: object, strategy: object, jitter: object
) -> tuple[int, float | list[float], str, float]:
    """Check and normalise a job's retry options.

    Raises:
        ConfigurationError: naming the bad value.
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries={max_retries!r} must be an integer >= 0")
    delay: float | list[float]
    if isinstance(retry_delay, (int, float)) and not isinstance(retry_delay, bool):
        if retry_delay < 0:
            raise ConfigurationError(f"retry_delay={retry_delay!r} must be >= 0")
        delay = float(retry_delay)
    elif isinstance(retry_delay, Sequence) and not isinstance(retry_delay, (str, bytes)):
        items = list(retry_delay)
        if not items or any(
            isinstance(d, bool) or not isinstance(d, (int, float)) or d < 0 for d in items
        ):
            raise ConfigurationError(
                f"retry_delay={retry_delay!r} must be a number or a non-empty list of numbers >= 0"
            )
        delay = [float(d) for d in items]
    else:
        raise ConfigurationError(f"retry_delay={retry_delay!r} must be a number or a list")
    name = "fixed" if strategy is None else strategy
    if name not in STRATEGIES:
        raise ConfigurationError(
            f"retry_strategy={strategy!r} must be one of {', '.join(STRATEGIES)}"
        )
    if jitter is True:
        jitter_fraction = 0.5
    elif jitter is False or jitter is None:
        jitter_fraction = 0.0
    elif isinstance(jitter, (int, float)) and 0 <= jitter <= 1:
        jitter_fraction = float(jitter)
    else:
        raise ConfigurationError(f"retry_jitter={jitter!r} must be a bool or a fraction 0..1")
    return max_retries, delay, str(name), jitter_fraction


def retry_delay(
    failed_attempt: int,
    delay: float | Sequence[float],
    strategy: str = "fixed",
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after attempt ``failed_attempt`` (1 = the first run) failed.

    A sequence of delays is used as given (its last value repeats); a single
    number grows with ``strategy``; ``jitter`` spreads the result by up to
    that fraction either way so retries of many jobs don't arrive together.
    """
    n = max(1, failed_attempt)
    if isinstance(delay, (int, float)):
        base = float(delay)
        if strategy == "linear":
            value = base * n
        elif strategy == "exponential":
            value = base * 2.0 ** min(n - 1, 60)
        else:
            value = base
    else:
        value = float(delay[min(n - 1, len(delay) - 1)]) if delay else 0.0
    if jitter and value > 0:
        value *= 1.0 + (rng or random).uniform(-jitter, jitter)
    return min(max(value, 0.0), MAX_RETRY_DELAY)


def exception_path(cls: type) -> str:
    """``module:qualname`` of an exception class, as stored in ``retry_on``/``ignore_on``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def exception_paths(classes: object, option: str) -> list[str]:
    """Validate ``retry_on``/``ignore_on`` (a class or classes) and return their paths.

    Raises:
        ConfigurationError: an item is not an exception class.
    """
    if classes is None:
        return []
    items: Iterable[object] = (
        classes if isinstance(classes, (list, tuple, set, frozenset)) else [classes]
    )
    paths = []
    for item in items:
        if isinstance(item, str) and ":" in item:
            paths.append(item)
        elif isinstance(item, type) and issubclass(item, BaseException):
            paths.append(exception_path(item))
        else:
            raise ConfigurationError(f"{option}={item!r} is not an exception class")
    return paths


def should_retry(
    exc: BaseException,
    failed_attempt: int,
    max_retries: int,
    retry_on: Sequence[str] = (),
    ignore_on: Sequence[str] = (),
) -> bool:
    """Whether a job whose attempt ``failed_attempt`` raised ``exc`` gets another attempt.

    Matching is by class path over the exception's MRO, so the worker never
    has to import the classes named in the policy.
    """
    if failed_attempt > max_retries:
        return False
    lineage = {exception_path(c) for c in type(exc).__mro__}
    if ignore_on and lineage.intersection(ignore_on):
        return False
    if retry_on and not lineage.intersection(retry_on):
        return False
    return True
