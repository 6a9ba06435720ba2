"""The start queue's task: one more try to start a file that waits for a job slot.

Served by the poller function (same URL and token as the poll tasks; the body says
``"step": "start"``). The HTTP status steers Cloud Tasks: 503 while the file must keep waiting
(the queue retries with its backoff, without limit), 200 once it started or ended. A start
attempt holds the record's lease (``INGEST_LEASE_SECONDS``, the functions' timeout), so a task
delivered twice never starts one part twice.
"""

from __future__ import annotations

import contextlib

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord
from functions.job_start import recover_interrupted_start, schedule_poll, start_jobs
from functions.lifecycle import State, publish_pending
from functions.logs import info
from functions.services import PollerServices

RETRY, DONE = 503, 200


def handle_start(record: ImportRecord, services: PollerServices) -> tuple[int, str]:
    """One attempt for a queued file; returns the HTTP status and a short text."""
    if record.terminal:
        publish_pending(record, records=services.records, publisher=services.publisher)
        return DONE, f"already {record.state}"
    if record.state == State.JOB_STARTED:
        schedule_poll(record, services)  # a crash may have come between the two
        return DONE, "already started"
    if record.state not in (State.QUEUED, State.JOB_STARTING):
        return RETRY, f"not queued yet ({record.state})"
    now = services.clock()
    if record.lease_until > now:
        return RETRY, "another start attempt holds the file"
    if record.state == State.JOB_STARTING:
        return DONE, recover_interrupted_start(record, services)
    record.lease_until = now + services.config.ingest_lease_seconds
    try:
        services.records.save(record)
    except StaleGenerationError:
        return RETRY, "another start attempt took the file first"
    try:
        outcome = start_jobs(record, services)
    except Exception:
        record.lease_until = 0.0
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            services.records.save(record)
        raise
    info("Start attempt", step="start_task", outcome=outcome, **record.fields)
    if outcome == "queued":
        return RETRY, "waiting for a job slot"
    return DONE, outcome
