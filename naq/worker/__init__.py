"""Worker: takes jobs from queues' shared durable consumers and runs them.

One pull consumer per queue is shared by every worker of that queue. A worker
asks for as many messages as it has free slots, runs async functions on its
event loop and sync ones in threads, keeps running jobs alive with in-progress
acks, stores the first result, retries by delayed NAK and moves what can't run
to the dead-letter stream. SIGTERM/SIGINT stop it gracefully; a second signal
stops it at once.

The parts, each in its module: ``loop`` (the :class:`Worker`: options, run, signals,
shutdown, remote control), ``feeding`` (pull requests matched to free slots, burst
mode), ``attempt`` (one attempt at a job and its outcome), ``liveness`` (heartbeat,
in-progress acks, running statuses), ``metering`` (what the attempts add up to, and
the metrics reports), ``execution`` (running a job's function, async or
in a thread, under its timeout) and ``state`` (what they share).
"""

from naq.worker.attempt import delivery_count
from naq.worker.feeding import (
    BURST_RECHECK,
    BURST_RECHECK_MAX,
    MAX_BATCH,
    MIN_RECORDING,
    PULL_WAIT,
)
from naq.worker.liveness import HEARTBEAT_RETRY
from naq.worker.loop import Worker
from naq.worker.state import RunningJob

__all__ = [
    "BURST_RECHECK",
    "BURST_RECHECK_MAX",
    "HEARTBEAT_RETRY",
    "MAX_BATCH",
    "MIN_RECORDING",
    "PULL_WAIT",
    "RunningJob",
    "Worker",
    "delivery_count",
]
