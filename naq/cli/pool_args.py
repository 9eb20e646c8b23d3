"""The command line of a pool's child: ``naq worker`` as it was given, less ``--processes``,
with a name of the child's own.

The options are read from the parsed command (every option of ``naq worker`` not left at
its default, whatever options the command has), so an option added to ``naq worker``
reaches the children without a line here.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Sequence

import typer
from typer.core import TyperArgument, TyperOption

#: ``naq worker``'s parameters that are the supervisor's own: each child has its own name.
SUPERVISOR_ONLY = frozenset({"processes", "name"})
#: Where a parameter's value came from when nobody gave it.
_DEFAULT_SOURCES = frozenset({"DEFAULT", "DEFAULT_MAP"})


def _text(value: object) -> str:
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


def _option_args(option: TyperOption, value: object) -> list[str]:
    """``option`` with ``value`` as command-line words, each value joined to its flag
    (``--flag=value``) so that one starting with ``-`` is never read as an option."""
    flag = max(option.opts, key=len)
    if option.is_flag:
        if value:
            return [flag]
        return [option.secondary_opts[0]] if option.secondary_opts else []
    values: Sequence[object] = value if option.multiple else [value]  # type: ignore[assignment]
    if flag.startswith("--"):
        return [f"{flag}={_text(item)}" for item in values]
    return [word for item in values for word in (flag, _text(item))]


def pool_child_argv(ctx: typer.Context) -> Callable[[str], list[str]]:
    """For the ``naq worker`` command parsed in ``ctx``: a function giving the full command
    line (``python -m naq worker …``) of the pool's child named by its argument."""
    options: list[str] = []
    arguments: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if name in SUPERVISOR_ONLY or source is None or source.name in _DEFAULT_SOURCES:
            continue
        value = ctx.params[name]
        if isinstance(param, TyperArgument):
            values = value if isinstance(value, (list, tuple)) else [value]
            arguments += [_text(item) for item in values]
        elif isinstance(param, TyperOption):
            options += _option_args(param, value)
    command = [sys.executable, "-m", "naq", ctx.info_name or "worker", *options]

    def child_argv(child_name: str) -> list[str]:
        # After "--" the queues can't be taken for options, whatever their names.
        return [*command, f"--name={child_name}", *(["--", *arguments] if arguments else [])]

    return child_argv
