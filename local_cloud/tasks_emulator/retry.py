"""Cloud Tasks' retry arithmetic: when a failed task is tried again, and when it is given up.

Kept apart from the queue state because it is pure: the backend asks
:func:`effective_policy` for a task's policy (the queue's ``retry_config``, overridden field
by field by the task's own) and :class:`RetryPolicy` for the next delay or the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.cloud import tasks_v2

from local_cloud.grpc_common import seconds

# Defaults the real service picks for fields left unset when a queue is created
# (as shown by `gcloud tasks queues describe` for a queue created without flags).
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_MAX_RETRY_DURATION = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """A queue's (or task's) effective retry configuration, in seconds."""

    max_attempts: int
    max_retry_duration: float
    min_backoff: float
    max_backoff: float
    max_doublings: int

    @classmethod
    def from_config(cls, rc: tasks_v2.RetryConfig) -> RetryPolicy:
        return cls(
            max_attempts=rc.max_attempts,
            max_retry_duration=seconds(rc.max_retry_duration),
            min_backoff=seconds(rc.min_backoff),
            max_backoff=seconds(rc.max_backoff),
            max_doublings=rc.max_doublings,
        )

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = the retry after the first attempt).

        The interval starts at min_backoff, doubles ``max_doublings`` times, then grows linearly
        by ``min_backoff * 2**max_doublings`` per retry; it never exceeds max_backoff. With
        min 10s, max 300s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
        """
        n = max(0, retry_number - 1)
        doublings = min(self.max_doublings, 60)
        if n <= doublings:
            interval = math.ldexp(self.min_backoff, n)
        else:
            step = math.ldexp(self.min_backoff, doublings)
            interval = step * (1 + n - doublings)
        return max(0.0, min(interval, self.max_backoff))

    def should_stop(self, attempts: int, since_first_attempt: float) -> bool:
        """True when no further attempt may be made after ``attempts`` failed attempts.

        Both limits must be reached; an unlimited limit (-1 attempts, 0 duration) counts as
        reached only if the other one is limited. Both unlimited: retry forever.
        """
        attempts_limited = self.max_attempts != -1
        duration_limited = self.max_retry_duration > 0
        if not attempts_limited and not duration_limited:
            return False
        attempts_done = not attempts_limited or attempts >= self.max_attempts
        duration_done = not duration_limited or since_first_attempt >= self.max_retry_duration
        return attempts_done and duration_done


def effective_policy(queue: tasks_v2.Queue, task: tasks_v2.Task) -> RetryPolicy:
    """The policy of ``task`` in ``queue``: a task-level RetryConfig overrides the queue's,
    field by field where set."""
    policy = RetryPolicy.from_config(queue.retry_config)
    if "retry_config" not in task:
        return policy
    rc = task.retry_config
    return RetryPolicy(
        max_attempts=rc.max_attempts or policy.max_attempts,
        max_retry_duration=(
            seconds(rc.max_retry_duration)
            if "max_retry_duration" in rc
            else policy.max_retry_duration
        ),
        min_backoff=seconds(rc.min_backoff) if "min_backoff" in rc else policy.min_backoff,
        max_backoff=seconds(rc.max_backoff) if "max_backoff" in rc else policy.max_backoff,
        max_doublings=rc.max_doublings or policy.max_doublings,
    )
