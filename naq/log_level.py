"""The log level of naq's processes.

Every naq process (a worker, a scheduler, the dashboard, the demo, the TUI, any other
command) logs at the level its ``--log-level`` flag names, else at ``NAQ_LOG_LEVEL``, else at
the command's own default: INFO for the long-running ones, WARNING for one-shot commands.
A program using naq as a library asks for the same with ``naq.utils.setup_logging(level)``
(its level, else ``NAQ_LOG_LEVEL``, else :data:`LIBRARY_DEFAULT`).
"""

from __future__ import annotations

import logging
import sys

from naq.errors import ConfigurationError

#: The level names naq accepts (in any case), most verbose first.
LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: How a naq process writes a log record to stderr.
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Name of the root handler naq installs (so that only it is ever replaced).
HANDLER_NAME = "naq"
#: The level of ``naq.utils.setup_logging()`` when neither it nor ``NAQ_LOG_LEVEL`` names one.
LIBRARY_DEFAULT = "INFO"


def parse_level(value: object, source: str) -> str:
    """The level name ``value`` stands for, upper-cased.

    ``source`` names where the value came from (``NAQ_LOG_LEVEL``, ``--log-level``) for the error.

    Raises:
        ConfigurationError: ``value`` is not one of :data:`LEVEL_NAMES`.
    """
    name = value.strip().upper() if isinstance(value, str) else None
    if name not in LEVEL_NAMES:
        raise ConfigurationError(
            f"{source}={value!r} is not a log level; use one of {', '.join(LEVEL_NAMES)}"
        )
    return str(name)


def choose_level(
    flag: str | None, setting: str | None, default: str, *, flag_source: str = "--log-level"
) -> str:
    """The level a process logs at: the flag's, else the setting's, else the default.

    ``flag_source`` names where the flag came from, for the error (``naq.utils.setup_logging``
    passes its own parameter).

    Raises:
        ConfigurationError: the flag or the setting is not a log level.
    """
    if flag is not None:
        return parse_level(flag, flag_source)
    if setting is not None:
        return parse_level(setting, "NAQ_LOG_LEVEL")
    return default


def configure_logging(level: str, handler: logging.Handler | None = None) -> None:
    """Log the process's records at ``level``, to stderr (or to ``handler``).

    Called again, it replaces what the previous call set up (and nothing else), so a command
    can refine what the whole command line was given.
    """
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
    if handler.formatter is None:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
