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
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.protobuf import timestamp_pb2

from functions import records
from functions.cloud_tasks_client import make_tasks_client
from functions.config import Config
from functions.logs import info
from functions.records import ImportRecord

_client = lru_cache(maxsize=1)(make_tasks_client)

FIRST_POLL_DELAY_SECONDS = 15

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def task_id_for(job_ids: list[str]) -> str:
    """A task id that is the same for the same jobs, within Cloud Tasks' alphabet."""
    joined = "-".join(sorted(job_ids))
    readable = _UNSAFE.sub("_", joined)[:80]
    digest = hashlib.sha256(joined.encode()).hexdigest()[:16]
    return f"poll-{readable}-{digest}"


def enqueue_poll(
    *,
    queue: str,
    poller_url: str,
    service_account: str,
    job_ids: list[str],
    payload: Mapping[str, object],
    delay_seconds: float = FIRST_POLL_DELAY_SECONDS,
) -> str:
    """Create the poll task; returns its full name. A duplicate is not an error."""
    name = f"{queue}/tasks/{task_id_for(job_ids)}"
    schedule = timestamp_pb2.Timestamp()
    schedule.FromDatetime(datetime.now(UTC) + timedelta(seconds=delay_seconds))
    task = tasks_v2.Task(
        name=name,
        schedule_time=schedule,
        http_request=tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=poller_url,
            headers={"Content-Type": "application/json"},
            body=json.dumps(dict(payload)).encode(),
            oidc_token=tasks_v2.OidcToken(
                service_account_email=service_account, audience=poller_url
            ),
        ),
    )
    with contextlib.suppress(gexc.AlreadyExists):
        _client().create_task(parent=queue, task=task)
    return name


def ensure_poll(record: ImportRecord, config: Config) -> None:
    """Make sure the file's poll task exists (again, after a redelivery) and is on record."""
    assert config.tasks_queue and config.poller_url and config.tasks_service_account
    payload = {
        "bucket": record.bucket,
        "object": record.object,
        "generation": str(record.generation),
    }
    name = enqueue_poll(
        queue=config.tasks_queue,
        poller_url=config.poller_url,
        service_account=config.tasks_service_account,
        job_ids=record.job_ids,
        payload=payload,
        delay_seconds=config.poll_first_delay_seconds,
    )
    if record.task_name != name:
        record.task_name = name
        records.save(record)
    info(
        "Scheduled the poller",
        step="enqueue_poll",
        task=name,
        job_ids=record.job_ids,
        bucket=record.bucket,
        object=record.object,
        generation=str(record.generation),
    )
