"""Log levels: NAQ_LOG_LEVEL sets every naq process's level, a --log-level flag wins over it."""

from __future__ import annotations

import os

import pytest

from naq.errors import ConfigurationError
from naq.log_level import LEVEL_NAMES, choose_level, parse_level
from naq.settings import Settings
from tests.helpers import Result, naq_cli

#: A NATS URL nothing answers at.
UNREACHABLE = "nats://127.0.0.1:1"


def debug_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if " DEBUG " in line]


@pytest.mark.parametrize("value", ["debug", "Info", " WARNING ", "error", "CRITICAL"])
def test_a_level_is_read_in_any_case(value: str) -> None:
    assert parse_level(value, "NAQ_LOG_LEVEL") == value.strip().upper()
    assert parse_level(value, "NAQ_LOG_LEVEL") in LEVEL_NAMES


@pytest.mark.parametrize("value", ["loud", "", "10", "WARN ING"])
def test_a_bad_level_is_refused_naming_it_and_where_it_came_from(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_level(value, "--log-level")
    assert str(caught.value).startswith(f"--log-level={value!r} is not a log level")
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in str(caught.value)


def test_the_flag_wins_over_the_setting_which_wins_over_the_default() -> None:
    assert choose_level("error", "DEBUG", "INFO") == "ERROR"
    assert choose_level(None, "DEBUG", "INFO") == "DEBUG"
    assert choose_level(None, None, "INFO") == "INFO"
    with pytest.raises(ConfigurationError, match="--log-level='nope'"):
        choose_level("nope", "DEBUG", "INFO")


def test_settings_read_and_check_naq_log_level() -> None:
    assert Settings.from_env({}).log_level is None
    assert Settings.from_env({"NAQ_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert Settings(log_level="warning").log_level == "WARNING"
    with pytest.raises(ConfigurationError, match="NAQ_LOG_LEVEL='loud' is not a log level"):
        Settings.from_env({"NAQ_LOG_LEVEL": "loud"})


@pytest.mark.usefixtures("nats_url")
async def test_a_worker_logs_at_naq_log_level() -> None:
    # Python 3.10 has no logging.getLevelNamesMapping: a worker that used it never started.
    worker = await naq_cli(
        "worker", "loglevel", "--burst", env=dict(os.environ, NAQ_LOG_LEVEL="DEBUG")
    )
    assert worker.code == 0, worker
    assert "Traceback" not in worker.err, worker
    assert debug_lines(worker), worker
    # Its INFO lines are there too, in naq's format.
    assert any(" INFO    naq.worker: " in line for line in worker.err.splitlines()), worker


@pytest.mark.usefixtures("nats_url")
async def test_the_log_level_flag_wins_over_naq_log_level() -> None:
    worker = await naq_cli(
        "worker",
        "loglevel",
        "--burst",
        "-l",
        "warning",
        env=dict(os.environ, NAQ_LOG_LEVEL="DEBUG"),
    )
    assert worker.code == 0, worker
    assert not debug_lines(worker), worker
    assert " INFO " not in worker.err, worker


@pytest.mark.usefixtures("nats_url")
async def test_a_worker_logs_info_by_default_and_a_command_warnings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NAQ_LOG_LEVEL"}
    worker = await naq_cli("worker", "loglevel", "--burst", env=env)
    assert worker.code == 0, worker
    assert " INFO    naq.worker: " in worker.err, worker
    assert not debug_lines(worker), worker
    queues = await naq_cli("queues", env=env)
    queues.assert_ok()
    assert queues.err == "", queues


@pytest.mark.usefixtures("nats_url")
async def test_a_command_without_a_log_level_flag_logs_at_naq_log_level() -> None:
    queues = await naq_cli("queues", "--json", env=dict(os.environ, NAQ_LOG_LEVEL="debug"))
    assert queues.code == 0, queues
    assert debug_lines(queues), queues


@pytest.mark.parametrize("command", [["worker", "loglevel"], ["scheduler"], ["queues"]])
async def test_a_bad_naq_log_level_is_one_clear_error(command: list[str]) -> None:
    # An unreachable server: a command that did not refuse the level fails another way.
    env = dict(os.environ, NAQ_LOG_LEVEL="loud", NAQ_NATS_URL=UNREACHABLE)
    result = await naq_cli(*command, env=env)
    result.assert_one_line_error("NAQ_LOG_LEVEL='loud'", "is not a log level")


async def test_a_bad_log_level_flag_is_one_clear_error() -> None:
    result = await naq_cli("worker", "loglevel", "-u", UNREACHABLE, "--log-level", "loud")
    result.assert_one_line_error("--log-level='loud'", "is not a log level")
