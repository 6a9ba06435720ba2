"""The poller's work: one Cloud Tasks attempt asks Leanplum how the file's jobs are doing.

The answer decides what Cloud Tasks does next: 503 while a job is PENDING or RUNNING (the
queue retries with its backoff: growing intervals), 2xx once the result is published or when
there is nothing left to do (a duplicate or late task). A job past ``POLL_DEADLINE_SECONDS``,
or the queue's last attempt (``POLL_MAX_ATTEMPTS``), ends as TIMED_OUT instead of vanishing.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any

from functions import gcs, records
from functions.config import REPORTS_PREFIX, Config
from functions.leanplum import JobStatus, LeanplumClient, LeanplumError, RequestRejected
from functions.logs import info, warning
from functions.records import ImportRecord
from functions.results import build_message, publish_if_pending, publish_stored_result

TASK_HEADERS = ("X-CloudTasks-QueueName", "X-CloudTasks-TaskName")


@dataclass(frozen=True)
class PollOutcome:
    """The HTTP answer for Cloud Tasks: a status code and a short text."""

    status: int
    text: str


@dataclass
class JoinedResults:
    """Leanplum's per-row answers joined back to the rows of the file it read."""

    successes: int = 0
    failures: int = 0
    warnings_by_message: Counter[str] = field(default_factory=Counter)
    failed_rows_csv: bytes = b""


def refuse_unless_cloud_tasks(headers: Mapping[str, str]) -> PollOutcome | None:
    """Refuse a request that does not come from Cloud Tasks.

    In the cloud, IAM already admits only the tasks service account (no unauthenticated
    invocation); this check keeps the local poller equally closed and catches a misrouted call.
    """
    missing = [name for name in TASK_HEADERS if not headers.get(name)]
    auth = headers.get("Authorization", "")
    if missing or not auth.startswith("Bearer ") or len(auth) < 20:
        what = ", ".join(missing) or "Authorization: Bearer token"
        return PollOutcome(403, f"refused: not a Cloud Tasks request (missing {what})")
    return None


def handle_poll(
    payload: Mapping[str, Any], headers: Mapping[str, str], config: Config
) -> PollOutcome:
    """One poll attempt for the file named in ``payload``."""
    refusal = refuse_unless_cloud_tasks(headers)
    if refusal is not None:
        warning("Refused a request without Cloud Tasks headers", step="poll")
        return refusal
    try:
        bucket, name = str(payload["bucket"]), str(payload["object"])
        generation = int(payload["generation"])
    except (KeyError, TypeError, ValueError):
        return PollOutcome(400, "payload must name bucket, object and generation")
    fields = {"bucket": bucket, "object": name, "generation": str(generation)}
    record = records.load(bucket, name, generation)
    if record is None:
        warning("No import record for this task", step="poll", **fields)
        return PollOutcome(200, "no import record: nothing to do")
    if record.terminal:
        publish_if_pending(record, config.results_topic)
        info(
            "Late or duplicate poll: result already final",
            step="poll",
            state=record.state,
            **fields,
        )
        return PollOutcome(200, f"already {record.state}")
    if record.state != "JOB_STARTED":
        return PollOutcome(503, f"job not started yet ({record.state})")

    client = LeanplumClient(
        config.leanplum_api_url, config.leanplum_app_id, config.leanplum_dev_key
    )
    attempt = int(headers.get("X-CloudTasks-TaskRetryCount", "0") or 0) + 1
    overdue = _age_seconds(record.job_started_at) > config.poll_deadline_seconds
    last = attempt >= config.poll_max_attempts
    why = "the deadline passed" if overdue else "the poller's last attempt came"
    try:
        statuses = [client.job_status(job_id) for job_id in record.job_ids]
        running = [
            job for job, status in zip(record.job_ids, statuses, strict=True) if status.running
        ]
        if running and not (overdue or last):
            info("Job still running", step="poll", job_ids=running, attempt=attempt,
                 states=[s.state for s in statuses], **fields)  # fmt: skip
            return PollOutcome(503, f"running: {', '.join(running)}")
        timed_out = f"{why} while jobs {', '.join(running)} were still running" if running else None
        _conclude(record, config, client, statuses, timed_out=timed_out)
        return PollOutcome(200, record.result["status"] if record.result else record.state)
    except RequestRejected as exc:
        # Leanplum will not report on the job (unknown id, refused request): asking again
        # cannot help, so the file ends here with Leanplum's words.
        unknown = [JobStatus(state="UNKNOWN", error=exc.message) for _ in record.job_ids]
        _conclude(record, config, client, unknown, timed_out=None)
        return PollOutcome(200, "FAILED")
    except LeanplumError as exc:
        if overdue or last:
            unknown = [JobStatus(state="UNKNOWN", error=exc.message) for _ in record.job_ids]
            _conclude(
                record,
                config,
                client,
                unknown,
                timed_out=f"{why} while Leanplum could not be asked: {exc.message}",
            )
            return PollOutcome(200, "TIMED_OUT")
        warning("Leanplum did not answer the poll", step="poll", reason=exc.message, **fields)
        return PollOutcome(503, f"Leanplum: {exc.message}")
    finally:
        client.close()


def _age_seconds(started_at: str | None) -> float:
    if not started_at:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds()


def _conclude(
    record: ImportRecord,
    config: Config,
    client: LeanplumClient,
    statuses: list[JobStatus],
    *,
    timed_out: str | None,
) -> None:
    """Join the results, store the failed rows, move the record to its end and publish."""
    files = [url for status in statuses for url in status.files]
    joined = JoinedResults()
    if timed_out is None:
        joined = _join_results(record, client, statuses)
    if joined.failed_rows_csv:
        name = f"{REPORTS_PREFIX}{record.object}/{record.generation}/failed-rows.csv"
        gcs.upload_bytes(record.bucket, name, joined.failed_rows_csv, content_type="text/csv")
        record.uris["failed_rows"] = gcs.gs_uri(record.bucket, name)
    failed_jobs = [
        (job, s)
        for job, s in zip(record.job_ids, statuses, strict=True)
        if not s.running and s.state != "FINISHED"
    ]
    rows_rejected = int(record.report.get("rows_rejected", 0))
    if timed_out is not None:
        status, state, reason = "TIMED_OUT", "TIMED_OUT", timed_out
    elif failed_jobs:
        status, state = "FAILED", "FAILED"
        reason = "; ".join(
            f"job {job} {s.state}: {s.error or 'no reason given'}" for job, s in failed_jobs
        )
    elif joined.successes == 0:
        status, state, reason = "FAILED", "FINISHED", "Leanplum accepted none of the rows"
    elif joined.failures or rows_rejected:
        status, state = "PARTIAL", "FINISHED"
        reason = (
            f"{joined.failures} rows failed at Leanplum, "
            f"{rows_rejected} rows rejected by validation"
        )
    else:
        status, state, reason = "SUCCEEDED", "FINISHED", None
    jobs = [
        {
            "job_id": job,
            "state": s.state,
            "successes_count": s.successes,
            "failures_count": s.failures,
            "error": s.error,
            "files": s.files,
        }
        for job, s in zip(record.job_ids, statuses, strict=True)
    ]
    record.reason = reason
    record.result = build_message(
        record,
        status,
        reason=reason,
        jobs=jobs,
        leanplum={
            "successes": joined.successes if timed_out is None else None,
            "failures": joined.failures if timed_out is None else None,
            "warnings_by_message": dict(joined.warnings_by_message),
            "files": files,
        },
    )
    records.save(record, state)
    publish_stored_result(record, config.results_topic)


def _join_results(
    record: ImportRecord, client: LeanplumClient, statuses: list[JobStatus]
) -> JoinedResults:
    """Pair each result line with the row it answers (results are in file order, per part)."""
    joined = JoinedResults()
    out = io.StringIO()
    writer: Any = None
    for part, status in zip(record.parts, statuses, strict=True):
        if status.state != "FINISHED":
            continue
        lines = (
            line
            for url in status.files
            for line in client.download_results(url).decode().splitlines()
            if line.strip()
        )
        generation = record.output_generation if part["file"] == record.object else None
        blob = gcs.client().bucket(record.bucket).blob(part["file"], generation=generation)
        with blob.open("r", encoding="utf-8", newline="") as text:
            reader = csv.reader(text)
            header = next(reader)
            if writer is None:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(["row", *header, "leanplum_message"])
            for row_number, (row, line) in enumerate(zip_longest(reader, lines), start=2):
                if row is None:
                    warning(
                        "Leanplum sent more result lines than the file has rows",
                        step="join",
                        bucket=record.bucket,
                        object=record.object,
                    )
                    break
                problem = (
                    "no result line from Leanplum" if line is None else _problem(json.loads(line))
                )
                if problem is None:
                    joined.successes += 1
                    continue
                joined.failures += 1
                joined.warnings_by_message[problem] += 1
                writer.writerow([row_number, *row, problem])
    if joined.failures:
        joined.failed_rows_csv = out.getvalue().encode()
    return joined


def _problem(answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return "unreadable result line"
    for key in ("error", "warning"):
        value = answer.get(key)
        if value:
            return str(value.get("message") if isinstance(value, dict) else value)
    if answer.get("success") is not True:
        return "success=false"
    return None
