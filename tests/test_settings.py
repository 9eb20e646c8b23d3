"""Settings from the environment: out-of-range TTLs are refused by name (pure logic)."""

from __future__ import annotations

import pytest

from naq.errors import ConfigurationError
from naq.settings import MAX_TTL_SECONDS, Settings


@pytest.mark.parametrize("name", ["DEFAULT_RESULT_TTL", "JOB_STATUS_TTL", "WORKER_TTL"])
@pytest.mark.parametrize("value", [0, MAX_TTL_SECONDS + 1])
def test_a_ttl_out_of_range_is_refused_naming_it(name: str, value: int) -> None:
    with pytest.raises(ConfigurationError, match=f"{name.lower()}={value}"):
        Settings.from_env({f"NAQ_{name}": str(value)})


def test_the_longest_ttl_is_accepted() -> None:
    settings = Settings.from_env({"NAQ_DEFAULT_RESULT_TTL": str(MAX_TTL_SECONDS)})
    assert settings.default_result_ttl == MAX_TTL_SECONDS
