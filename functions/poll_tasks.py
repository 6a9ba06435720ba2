"""Scheduling the poller: one Cloud Tasks HTTP task per import.

The task's name is derived from the job ids, so enqueuing the same poll twice (a redelivered
event, a retried function) is refused by Cloud Tasks with ALREADY_EXISTS, which we treat as
success. The queue's ``retry_config`` gives the growing intervals: the poller answers non-2xx
while the job runs and Cloud Tasks retries with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.protobuf import duration_pb2, timestamp_pb2

from functions.import_record import ImportRecord

#: Cloud Tasks task ids allow letters, digits, ``-`` and ``_`` only.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
#: How much of the job ids stays readable in the task id (the digest keeps it unique).
_READABLE_CHARS = 80
_DIGEST_CHARS = 16
#: How long Cloud Tasks waits for one poll before it counts the attempt as failed: its maximum
#: for HTTP targets (the default, 10 min, would cut off a long join of results to rows although
#: the poller function may run 30 min).
DISPATCH_DEADLINE_SECONDS = 1800


def task_id_for(job_ids: list[str]) -> str:
    """A task id that is the same for the same jobs, within Cloud Tasks' alphabet."""
    joined = "-".join(sorted(job_ids))
    readable = _UNSAFE.sub("_", joined)[:_READABLE_CHARS]
    digest = hashlib.sha256(joined.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"poll-{readable}-{digest}"


def poll_payload(record: ImportRecord) -> dict[str, str]:
    """What the poller needs to find the record: the file version, never a secret."""
    return {"bucket": record.bucket, "object": record.object, "generation": str(record.generation)}


def start_task_id(record: ImportRecord) -> str:
    """One start task per file version (Cloud Tasks refuses a second of the same name)."""
    version = f"{record.bucket}/{record.object}#{record.generation}"
    return f"start-{record.generation}-{hashlib.sha256(version.encode()).hexdigest()[:32]}"


def start_payload(record: ImportRecord) -> dict[str, str]:
    """A start task's body: the file version and the step the poller function takes."""
    return {**poll_payload(record), "step": "start"}


class PollScheduler(Protocol):
    """Makes sure a file's poll task exists; returns the task's full name."""

    def ensure_poll(self, record: ImportRecord) -> str: ...


class StartScheduler(Protocol):
    """Makes sure a queued file's start task exists; returns the task's full name."""

    def ensure_start(self, record: ImportRecord) -> str: ...


class CloudTasksPollScheduler:
    """:class:`PollScheduler` on a Cloud Tasks queue, with an OIDC token for the poller."""

    def __init__(
        self,
        client: tasks_v2.CloudTasksClient,
        *,
        queue: str,
        poller_url: str,
        service_account: str,
        first_delay_seconds: float,
    ) -> None:
        self._client = client
        self.queue = queue
        self.poller_url = poller_url
        self.service_account = service_account
        self.first_delay_seconds = first_delay_seconds

    def ensure_poll(self, record: ImportRecord) -> str:
        """Create the poll task of ``record``'s jobs; a duplicate is not an error."""
        name = f"{self.queue}/tasks/{task_id_for(record.job_ids)}"
        self._create(self.queue, name, poll_payload(record), self.first_delay_seconds)
        return name

    def _create(self, queue: str, name: str, payload: dict[str, str], delay: float) -> None:
        schedule = timestamp_pb2.Timestamp()
        schedule.FromDatetime(datetime.now(UTC) + timedelta(seconds=delay))
        task = tasks_v2.Task(
            name=name,
            schedule_time=schedule,
            dispatch_deadline=duration_pb2.Duration(seconds=DISPATCH_DEADLINE_SECONDS),
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=self.poller_url,
                headers={"Content-Type": "application/json"},
                body=json.dumps(payload).encode(),
                oidc_token=tasks_v2.OidcToken(
                    service_account_email=self.service_account, audience=self.poller_url
                ),
            ),
        )
        with contextlib.suppress(gexc.AlreadyExists):
            self._client.create_task(parent=queue, task=task)


class CloudTasksStartScheduler(CloudTasksPollScheduler):
    """:class:`StartScheduler` on the start queue: same URL and token as the poll tasks, the
    poller function tells the two apart by the body's ``step``."""

    def __init__(self, client: tasks_v2.CloudTasksClient, *, start_queue: str, poller_url: str,
                 service_account: str) -> None:  # fmt: skip
        super().__init__(client, queue=start_queue, poller_url=poller_url,
                         service_account=service_account, first_delay_seconds=0)  # fmt: skip

    def ensure_start(self, record: ImportRecord) -> str:
        """Create the start task of a queued file; a duplicate is not an error."""
        name = f"{self.queue}/tasks/{start_task_id(record)}"
        self._create(self.queue, name, start_payload(record), 0)
        return name
