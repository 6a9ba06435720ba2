"""The local cloud's Cloud Tasks queues, each with its own retry and rate settings.

Why two queues with different settings: the poll queue's retry schedule *is* the polling
schedule and its ``max_attempts`` ends an import as TIMED_OUT (the poller reads it as
``POLL_MAX_ATTEMPTS``), while the start queue holds files waiting for a free Leanplum job slot:
the poller answers 503 while a file must keep waiting, so that queue retries without limit
(``max_attempts = -1``, as Cloud Tasks spells it, and no ``max_retry_duration``) and the
functions' own ``MAX_QUEUED_SECONDS`` ends a wait that lasts too long. Terraform sets the same
shapes in the cloud; locally the backoffs are short so that tests and demos are quick.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import tasks_v2
from google.protobuf import duration_pb2

#: Cloud Tasks' spelling of "retry without limit".
UNLIMITED_ATTEMPTS = -1


@dataclass(frozen=True)
class QueueSpec:
    """One queue as created in the emulator: its full name, retry config and rate limits."""

    name: str
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    max_doublings: int = 4
    max_dispatches_per_second: float = 50.0
    max_concurrent_dispatches: int = 20

    def to_queue(self) -> tasks_v2.Queue:
        """The ``tasks_v2.Queue`` to create (no ``max_retry_duration``: attempts decide)."""
        return tasks_v2.Queue(
            name=self.name,
            retry_config=tasks_v2.RetryConfig(
                max_attempts=self.max_attempts,
                min_backoff=_duration(self.min_backoff_s),
                max_backoff=_duration(self.max_backoff_s),
                max_doublings=self.max_doublings,
            ),
            rate_limits=tasks_v2.RateLimits(
                max_dispatches_per_second=self.max_dispatches_per_second,
                max_concurrent_dispatches=self.max_concurrent_dispatches,
            ),
        )


def create_queues(parent: str, specs: list[QueueSpec]) -> None:
    """Create every queue of ``specs`` under ``parent`` in the emulator the environment names
    (``CLOUD_TASKS_EMULATOR_HOST``)."""
    from functions.cloud_tasks_client import make_tasks_client

    client = make_tasks_client()
    try:
        for spec in specs:
            client.create_queue(parent=parent, queue=spec.to_queue())
    finally:
        client.transport.close()  # type: ignore[no-untyped-call]


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration
