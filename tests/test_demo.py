"""``naq demo``, the README's first command: an embedded server, a worker, a scheduler and
sample jobs, stopped whole."""

from __future__ import annotations

import re
import time

from tests.helpers import naq_cli


async def test_the_demo_runs_jobs_and_stops_at_once() -> None:
    started = time.monotonic()
    result = await naq_cli("demo", "--no-tui", "--duration", "3")
    took = time.monotonic() - started
    assert result.code == 0, result
    assert "Traceback" not in result.out + result.err, result
    assert "nats-server at nats://127.0.0.1:" in result.out
    done = re.search(r"demo stopped: .*completed (\d+)", result.out)
    assert done and int(done.group(1)) > 0, result.out
    # Its connections are closed while its server still runs: before, they waited out a
    # drain's timeout (10 s) for a server already gone.
    assert took < 3 + 6, took
