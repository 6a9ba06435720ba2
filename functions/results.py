"""The result message: one JSON message per file that reached a final state.

Subscribers (dashboards, alerting, the exporter that dropped the file) filter on the attributes
``status``, ``bucket`` and ``object`` and read the body, described by
``schemas/result-message.schema.json`` (version in ``schema``). ``result_id`` names the file
version; Pub/Sub delivers at least once, so a subscriber that must act once dedupes on it.
"""

from __future__ import annotations

import json
from concurrent import futures
from datetime import datetime
from functools import lru_cache
from typing import Any

from google.cloud.pubsub import PublisherClient

from functions import records
from functions.logs import info
from functions.records import ImportRecord, now_iso

SCHEMA_ID = "leanplum-import-result/v1"
STATUSES = ("SUCCEEDED", "PARTIAL", "FAILED", "REJECTED", "TIMED_OUT", "DUPLICATE")
PUBLISH_TIMEOUT_SECONDS = 60


@lru_cache(maxsize=1)
def publisher() -> PublisherClient:
    """One publisher per process; it honours ``PUBSUB_EMULATOR_HOST`` by itself."""
    return PublisherClient()


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds(), 3)


def build_message(
    record: ImportRecord,
    status: str,
    *,
    reason: str | None = None,
    leanplum: dict[str, Any] | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The message body for ``record`` ending in ``status``. Pure: no I/O."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    report = record.report or {}
    leanplum = leanplum or {}
    finished_at = now_iso()
    uploaded_at = record.uploaded_at
    rows_rejected = int(report.get("rows_rejected", 0))
    rows_sent = sum(int(part.get("rows", 0)) for part in record.parts) if record.job_ids else 0
    return {
        "schema": SCHEMA_ID,
        "result_id": f"{record.bucket}/{record.object}#{record.generation}",
        "status": status,
        "reason": reason,
        "file": {
            "bucket": record.bucket,
            "object": record.object,
            "generation": str(record.generation),
            "sha256": record.sha256,
            "size_bytes": record.size_bytes,
        },
        "counts": {
            "rows_total": int(report.get("rows_total", 0)),
            "rows_rejected": rows_rejected,
            "rows_time_clamped": int(report.get("rows_time_clamped", 0)),
            "rows_hidden_from_analytics": int(report.get("rows_hidden_from_analytics", 0)),
            "rows_sent": rows_sent,
            "leanplum_successes": leanplum.get("successes"),
            "leanplum_failures": leanplum.get("failures"),
            "leanplum_warnings_by_message": leanplum.get("warnings_by_message", {}),
        },
        "jobs": jobs or [{"job_id": job_id} for job_id in record.job_ids],
        "uris": {
            "normalized": record.uris.get("normalized"),
            "parts": [part["uri"] for part in record.parts if "uri" in part],
            "original": record.uris.get("original"),
            "report": record.uris.get("report"),
            "rejected_rows": record.uris.get("rejected_rows"),
            "failed_rows": record.uris.get("failed_rows"),
            "leanplum_results": leanplum.get("files", []),
        },
        "timings": {
            "uploaded_at": uploaded_at,
            "received_at": record.created_at,
            "job_started_at": record.job_started_at,
            "finished_at": finished_at,
            "seconds_upload_to_result": _seconds_between(uploaded_at, finished_at),
            "seconds_job": _seconds_between(record.job_started_at, finished_at),
        },
    }


def publish(topic: str, message: dict[str, Any]) -> str:
    """Publish ``message`` with its filter attributes; returns the Pub/Sub message id.

    The publisher client retries transient errors by itself; we wait for the outcome so a
    failure surfaces to the caller (and its own retry) instead of vanishing in a future.
    """
    future = publisher().publish(
        topic,
        json.dumps(message, sort_keys=True).encode(),
        status=message["status"],
        bucket=message["file"]["bucket"],
        object=message["file"]["object"],
    )
    try:
        return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
    except futures.TimeoutError as exc:
        raise TimeoutError(f"publishing to {topic} took over {PUBLISH_TIMEOUT_SECONDS} s") from exc


def publish_stored_result(record: ImportRecord, topic: str) -> None:
    """Publish the result stored in the record, then mark it published.

    The result is saved with the record's terminal state before this runs, so a crash between
    publishing and marking makes the next delivery (or poll task) publish it again: at least
    once, never lost. Subscribers dedupe on ``result_id``.
    """
    assert record.result is not None
    message_id = publish(topic, record.result)
    record.published = True
    records.save(record)
    info(
        "Published the result",
        step="publish",
        status=record.result["status"],
        message_id=message_id,
        reason=record.reason,
        bucket=record.bucket,
        object=record.object,
        generation=str(record.generation),
        job_ids=record.job_ids,
    )


def publish_if_pending(record: ImportRecord, topic: str) -> bool:
    """Publish a terminal record's result that an earlier crash left unpublished."""
    if record.published or record.result is None:
        return False
    publish_stored_result(record, topic)
    return True


def finish(record: ImportRecord, topic: str, state: str, *, reason: str | None) -> None:
    """Move to a terminal state and publish its one message (SUPERSEDED publishes none)."""
    status = {"FAILED": "FAILED", "REJECTED": "REJECTED", "DUPLICATE": "DUPLICATE"}.get(state)
    record.reason = reason
    if status is not None:
        record.result = build_message(record, status, reason=reason)
    records.save(record, state)
    if record.result is not None:
        publish_stored_result(record, topic)
