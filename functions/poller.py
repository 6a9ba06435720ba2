"""The poller's work: one Cloud Tasks attempt asks Leanplum how the file's jobs are doing.

The answer decides what Cloud Tasks does next: 503 while a job is PENDING or RUNNING (the
queue retries with its backoff: growing intervals), 2xx once the result is published or when
there is nothing left to do (a duplicate or late task). A job past ``POLL_DEADLINE_SECONDS``,
or the queue's last attempt (``POLL_MAX_ATTEMPTS``), ends as TIMED_OUT instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.errors import StaleGenerationError
from functions.file_end import end_file
from functions.import_record import ImportRecord
from functions.job_slots import JobSlots
from functions.leanplum import JobStatus, LeanplumError, RequestRejected
from functions.lifecycle import State, Status, publish_pending
from functions.logs import info, warning
from functions.naming import reports_dir
from functions.objects import AccessDenied, ObjectNotFound, gs_uri, write_once
from functions.queued_start import handle_start
from functions.results import LeanplumCounts
from functions.results_join import JoinedResults, join_results
from functions.services import LeanplumApi, PollerServices

TASK_HEADERS = ("X-CloudTasks-QueueName", "X-CloudTasks-TaskName")
#: "Bearer " and a token: anything shorter is not an OIDC token (they run to hundreds of chars).
MIN_AUTHORIZATION_CHARS = 20


@dataclass(frozen=True)
class PollOutcome:
    """The HTTP answer for Cloud Tasks: a status code and a short text."""

    status: int
    text: str


@dataclass(frozen=True)
class Decision:
    """How a file whose jobs are over ends: its terminal state, status and reason."""

    state: State
    status: Status
    reason: str | None


def refuse_unless_cloud_tasks(headers: Mapping[str, str]) -> PollOutcome | None:
    """Refuse a request that does not come from Cloud Tasks.

    In the cloud, IAM already admits only the tasks service account (no unauthenticated
    invocation); this check keeps the local poller equally closed and catches a misrouted call.
    """
    missing = [name for name in TASK_HEADERS if not headers.get(name)]
    auth = headers.get("Authorization", "")
    if missing or not auth.startswith("Bearer ") or len(auth) < MIN_AUTHORIZATION_CHARS:
        what = ", ".join(missing) or "Authorization: Bearer token"
        return PollOutcome(403, f"refused: not a Cloud Tasks request (missing {what})")
    return None


def decide(
    record: ImportRecord,
    statuses: list[JobStatus],
    joined: JoinedResults | None,
    *,
    timed_out: str | None,
) -> Decision:
    """The end of a file whose jobs are over (or out of time). Pure: no I/O."""
    if timed_out is not None:
        return Decision(State.TIMED_OUT, Status.TIMED_OUT, _with_start_error(record, timed_out))
    failed = [
        (job, s)
        for job, s in zip(record.job_ids, statuses, strict=True)
        if not s.running and s.state != "FINISHED"
    ]
    if failed:
        reason = "; ".join(
            f"job {job} {s.state}: {s.error or 'no reason given'}" for job, s in failed
        )
        return Decision(State.FAILED, Status.FAILED, _with_start_error(record, reason))
    joined = joined or JoinedResults()
    if record.start_error:
        sent = f"the {len(record.job_ids)} parts that started were imported"
        accepted = f"{joined.successes} rows accepted, {joined.failures} failed at Leanplum"
        return Decision(State.FAILED, Status.FAILED, f"{record.start_error}; {sent}: {accepted}")
    if joined.successes == 0:
        return Decision(State.FAILED, Status.FAILED, "Leanplum accepted none of the rows")
    rejected = record.validation.rows_rejected
    if joined.failures or rejected:
        reason = (
            f"{joined.failures} rows failed at Leanplum, {rejected} rows rejected by validation"
        )
        return Decision(State.FINISHED, Status.PARTIAL, reason)
    return Decision(State.FINISHED, Status.SUCCEEDED, None)


def _with_start_error(record: ImportRecord, reason: str) -> str:
    return f"{record.start_error}; {reason}" if record.start_error else reason


def handle_poll(
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    services: PollerServices,
    audience: str = "",
) -> PollOutcome:
    """One poll attempt for the file named in ``payload`` (``audience``: this function's URL,
    which the task's token must name)."""
    refusal = refuse_unless_cloud_tasks(headers)
    if refusal is None and services.verify_task_token is not None:
        problem = services.verify_task_token(headers.get("Authorization", ""), audience)
        if problem is not None:
            refusal = PollOutcome(403, f"refused: {problem}")
    if refusal is not None:
        warning("Refused a request not from Cloud Tasks", step="poll", reason=refusal.text)
        return refusal
    try:
        bucket, name = str(payload["bucket"]), str(payload["object"])
        generation = int(payload["generation"])
    except (KeyError, TypeError, ValueError):
        return PollOutcome(400, "payload must name bucket, object and generation")
    fields = {"bucket": bucket, "object": name, "generation": str(generation)}
    record = services.records.load(bucket, name, generation)
    if record is None:
        warning("No import record for this task", step="poll", **fields)
        return PollOutcome(200, "no import record: nothing to do")
    if payload.get("step") == "start":
        status, text = handle_start(record, services)
        return PollOutcome(status, text)
    if record.terminal:
        publish_pending(record, records=services.records, publisher=services.publisher)
        info(
            "Late or duplicate poll: result already final",
            step="poll",
            state=record.state,
            **fields,
        )
        return PollOutcome(200, f"already {record.state}")
    if record.state != State.JOB_STARTED:
        return PollOutcome(503, f"job not started yet ({record.state})")
    record.poll_attempts += 1
    try:
        services.records.save(record)
    except StaleGenerationError:
        return PollOutcome(503, "another poll of this file is running")
    last = record.poll_attempts >= services.config.poll_max_attempts
    client = services.leanplum(record.app)
    try:
        return _poll(record, services, client, last=last)
    except Exception as exc:
        if not last:
            raise  # 500: the queue retries with its backoff
        # Nothing will ask again: end the file with what went wrong rather than drop the task.
        reason = f"the poller could not finish after {record.poll_attempts} attempts: {exc}"
        warning("Poll failed on the last attempt", step="poll", reason=reason, **fields)
        fresh = services.records.reload(record) or record
        if fresh.terminal:
            return PollOutcome(200, f"already {fresh.state}")
        end_file(fresh, State.FAILED, reason, services)
        return PollOutcome(200, Status.FAILED.value)
    finally:
        client.close()


def _poll(
    record: ImportRecord, services: PollerServices, client: LeanplumApi, *, last: bool
) -> PollOutcome:
    config = services.config
    attempt = record.poll_attempts
    overdue = _age_seconds(record.timings.job_started_at) > config.poll_deadline_seconds
    why = "the deadline passed" if overdue else "the poller's last attempt came"
    try:
        statuses = [client.job_status(job_id) for job_id in record.job_ids]
        running = [job for job, s in zip(record.job_ids, statuses, strict=True) if s.running]
        if running and not (overdue or last):
            _give_back_ended_slots(record, services, statuses)
            info(
                "Job still running",
                step="poll",
                job_ids=running,
                attempt=attempt,
                states=[s.state for s in statuses],
                **record.fields,
            )
            return PollOutcome(503, f"running: {', '.join(running)}")
        timed_out = f"{why} while jobs {', '.join(running)} were still running" if running else None
        return _conclude(record, services, client, statuses, timed_out=timed_out)
    except RequestRejected as exc:
        # Leanplum will not report on the job (unknown id, refused request): asking again
        # cannot help, so the file ends here with Leanplum's words.
        unknown = [JobStatus(state="UNKNOWN", error=exc.message) for _ in record.job_ids]
        return _conclude(record, services, client, unknown, timed_out=None)
    except LeanplumError as exc:
        if overdue or last:
            unknown = [JobStatus(state="UNKNOWN", error=exc.message) for _ in record.job_ids]
            timed_out = f"{why} while Leanplum could not be asked: {exc.message}"
            return _conclude(record, services, client, unknown, timed_out=timed_out)
        warning(
            "Leanplum did not answer the poll", step="poll", reason=exc.message, **record.fields
        )
        return PollOutcome(503, f"Leanplum: {exc.message}")


def _age_seconds(started_at: str | None) -> float:
    if not started_at:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds()


def _conclude(
    record: ImportRecord,
    services: PollerServices,
    client: LeanplumApi,
    statuses: list[JobStatus],
    *,
    timed_out: str | None,
) -> PollOutcome:
    """Join the results, store the failed rows, end the record and publish its message."""
    joined = None
    if timed_out is None:
        try:
            joined = join_results(record, statuses, client=client, objects=services.objects)
        except (ObjectNotFound, AccessDenied) as exc:
            # The file Leanplum read is gone (deleted by hand, or a record from before the
            # parts location): Leanplum's own counts stand in for the row-by-row join.
            warning("Cannot join results to rows", step="join", reason=str(exc), **record.fields)
            joined = JoinedResults(
                successes=sum(s.successes or 0 for s in statuses),
                failures=sum(s.failures or 0 for s in statuses),
            )
    if joined is not None and joined.failed_rows_csv:
        name = reports_dir(record.object, record.generation) + "failed-rows.csv"
        state = services.config.state_bucket
        write_once(
            services.objects,
            state,
            name,
            joined.failed_rows_csv,
            content_type="text/csv",
            if_generation_match=None,
        )
        record.uris.failed_rows = gs_uri(state, name)
    decision = decide(record, statuses, joined, timed_out=timed_out)
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
    counts = LeanplumCounts(
        successes=joined.successes if joined is not None else None,
        failures=joined.failures if joined is not None else None,
        warnings_by_message=dict(joined.warnings_by_message) if joined else {},
        files=[url for s in statuses for url in s.files],
    )
    end_file(record, decision.state, decision.reason, services, status=decision.status,
             leanplum=counts, jobs=jobs)  # fmt: skip
    return PollOutcome(200, decision.status.value)


def _give_back_ended_slots(
    record: ImportRecord, services: PollerServices, statuses: list[JobStatus]
) -> None:
    """A part whose job ended frees its slot at once, though the file's other jobs still run:
    a split file larger than the cap could otherwise never start its last parts."""
    by_job = dict(zip(record.job_ids, statuses, strict=True))
    if JobSlots.of(services).give_back_ended(record, lambda job: by_job[job].running):
        services.records.save(record)
