"""The result message: one JSON message per file that reached a final state.

Subscribers (dashboards, alerting, the exporter that dropped the file) filter on the attributes
``status``, ``bucket`` and ``object`` and read the body, described by
``schemas/result-message.schema.json`` (version in ``schema``). ``result_id`` names the file
version; Pub/Sub delivers at least once, so a subscriber that must act once dedupes on it.
"""

from __future__ import annotations

import json
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.cloud.pubsub import PublisherClient

from functions.import_record import ImportRecord, now_iso
from functions.leanplum_apps import DEFAULT_APP
from functions.lifecycle import Publisher, RecordKeeper, State, Status, conclude

SCHEMA_ID = "leanplum-import-result/v1"
STATUSES = tuple(status.value for status in Status)
PUBLISH_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class LeanplumCounts:
    """What Leanplum reported for the file's jobs, joined to its rows (``None``: not known)."""

    successes: int | None = None
    failures: int | None = None
    warnings_by_message: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds(), 3)


#: How many rejection reasons a message carries (all of them are in the report).
MAX_REASONS_IN_MESSAGE = 20


def _top_reasons(by_reason: Any) -> dict[str, int]:
    """The most frequent rejection reasons first, bounded, so a subscriber sees why a file was
    REJECTED or PARTIAL without opening the report."""
    if not isinstance(by_reason, dict):
        return {}
    ranked = sorted(by_reason.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return {str(reason): int(count) for reason, count in ranked[:MAX_REASONS_IN_MESSAGE]}


def _counts(found: Any) -> dict[str, int]:
    if not isinstance(found, dict):
        return {}
    return {str(key): int(value) for key, value in found.items()}


def build_message(
    record: ImportRecord,
    status: Status,
    *,
    reason: str | None = None,
    leanplum: LeanplumCounts | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The message body for ``record`` ending in ``status``. Pure: no I/O."""
    status = Status(status)
    summary = record.validation
    leanplum = leanplum or LeanplumCounts()
    finished_at = now_iso()
    timings = record.timings
    return {
        "schema": SCHEMA_ID,
        "result_id": f"{record.bucket}/{record.object}#{record.generation}",
        "status": status.value,
        "reason": reason,
        "file": {
            "bucket": record.bucket,
            "object": record.object,
            "generation": str(record.generation),
            "sha256": record.sha256,
            "size_bytes": record.size_bytes,
        },
        "counts": {
            "rows_total": summary.rows_total,
            "rows_rejected": summary.rows_rejected,
            "rows_rejected_by_reason": _top_reasons(summary.full.get("rejections_by_reason")),
            "rows_time_clamped": summary.rows_time_clamped,
            "rows_hidden_from_analytics": summary.rows_hidden_from_analytics,
            "rows_duplicate_dropped": summary.rows_duplicate_dropped,
            "time_formats": _counts(summary.full.get("time_formats")),
            "rows_sent": record.rows_sent,
            "leanplum_successes": leanplum.successes,
            "leanplum_failures": leanplum.failures,
            "leanplum_warnings_by_message": dict(leanplum.warnings_by_message),
        },
        "jobs": jobs if jobs is not None else [{"job_id": job_id} for job_id in record.job_ids],
        "uris": {
            "normalized": record.uris.normalized,
            "parts": [part.uri for part in record.parts if part.uri],
            "original": record.uris.original,
            "report": record.uris.report,
            "rejected_rows": record.uris.rejected_rows,
            "failed_rows": record.uris.failed_rows,
            "leanplum_results": list(leanplum.files),
        },
        "timings": {
            "uploaded_at": timings.uploaded_at,
            "received_at": timings.received_at,
            "job_started_at": timings.job_started_at,
            "finished_at": finished_at,
            "seconds_upload_to_result": _seconds_between(timings.uploaded_at, finished_at),
            "seconds_job": _seconds_between(timings.job_started_at, finished_at),
            "queued_at": timings.queued_at,
            "seconds_queued": _seconds_queued(record),
        },
        "app": {"name": record.app or DEFAULT_APP, "app_id": record.app_id},
        "leanplum_bucket": (
            {"copies": record.leanplum_copies, "deleted": record.leanplum_copies_deleted}
            if record.leanplum_copies
            else None
        ),
    }


def _seconds_queued(record: ImportRecord) -> float | None:
    """Time spent waiting for a job slot: 0 when the file never waited, ``None`` when it waited
    and no job started (the time it waited is in ``reason``)."""
    if record.timings.queued_at is None:
        return 0.0 if record.timings.job_started_at else None
    return _seconds_between(record.timings.queued_at, record.timings.job_started_at)


class PubSubPublisher:
    """Publishes result messages to one topic with their filter attributes."""

    def __init__(self, client: PublisherClient, topic: str) -> None:
        self._client = client
        self.topic = topic

    def publish(self, message: dict[str, Any]) -> str:
        """Publish ``message``; returns the Pub/Sub message id.

        The publisher client retries transient errors by itself; we wait for the outcome so a
        failure surfaces to the caller (and its own retry) instead of vanishing in a future.
        """
        future = self._client.publish(
            self.topic,
            json.dumps(message, sort_keys=True).encode(),
            status=message["status"],
            bucket=message["file"]["bucket"],
            object=message["file"]["object"],
        )
        try:
            return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
        except futures.TimeoutError as exc:
            raise TimeoutError(
                f"publishing to {self.topic} took over {PUBLISH_TIMEOUT_SECONDS} s"
            ) from exc


#: The status each terminal state carries unless the caller says otherwise (FINISHED must say).
DEFAULT_STATUS: dict[State, Status | None] = {
    State.FAILED: Status.FAILED,
    State.TIMED_OUT: Status.TIMED_OUT,
    State.REJECTED: Status.REJECTED,
    State.DUPLICATE: Status.DUPLICATE,
    State.SUPERSEDED: Status.SUPERSEDED,
    State.DRY_RUN: Status.DRY_RUN,
}


def finish(
    record: ImportRecord,
    state: State,
    *,
    reason: str | None,
    records: RecordKeeper,
    publisher: Publisher,
    status: Status | None = None,
    leanplum: LeanplumCounts | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> None:
    """End ``record`` in ``state`` with its message, through :func:`~functions.lifecycle.conclude`.

    :raises KeyError: ``state`` is FINISHED and no ``status`` was given (SUCCEEDED or PARTIAL
        is the caller's decision).
    """
    chosen = status if status is not None else DEFAULT_STATUS[state]
    conclude(
        record,
        state,
        status=chosen,
        reason=reason,
        build_result=lambda s: build_message(
            record, s, reason=reason, leanplum=leanplum, jobs=jobs
        ),
        records=records,
        publisher=publisher,
    )
