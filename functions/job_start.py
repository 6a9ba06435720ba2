"""Starting the Leanplum jobs of a validated file: at most one job per part, ever.

Leanplum's ``multi`` with ``createJob`` has no idempotency key and no way to look a job up by
file, so JOB_STARTING is recorded *before* the request and a lost answer is never resent: the
file ends FAILED with a reason that says a job may exist. Leanplum's 429 and 5xx answers (and
connections that never opened) made no job: the record goes back to VALIDATED and the event is
given back to Eventarc, bounded by :data:`functions.claims.MAX_ATTEMPTS`.
"""

from __future__ import annotations

from functions.claims import schedule_poll
from functions.events import FinalizedObject
from functions.import_record import ImportRecord, now_iso
from functions.leanplum import AnswerLost, ConnectionFailed, LeanplumError, RateLimited, ServerError
from functions.lifecycle import State
from functions.logs import info
from functions.results import finish
from functions.services import IngestServices

ANSWER_LOST_ADVICE = (
    "a Leanplum job may exist for this file, so it was not started again. "
    "Check Leanplum before uploading the file again."
)


def _live_output_replaced(
    obj: FinalizedObject, record: ImportRecord, services: IngestServices
) -> bool:
    """Whether a newer upload replaced our rewrite since it was made: the person or exporter
    meant the newer version, which has its own event."""
    live = services.objects.stat(obj.bucket, obj.name)
    return live is None or live.generation != record.output_generation


def start_jobs(obj: FinalizedObject, record: ImportRecord, services: IngestServices) -> str:
    """Record the attempt, then start one job per part; never resend a lost ``multi``."""

    def end(state: State, reason: str) -> None:
        finish(record, state, reason=reason, records=services.records, publisher=services.publisher)

    if _live_output_replaced(obj, record, services):
        info(
            "Stopped: the object was replaced before the job started",
            step="start_job",
            **obj.fields,
        )
        end(State.SUPERSEDED, "the file was replaced before the job started")
        return "superseded"
    services.records.save(record, State.JOB_STARTING)
    client = services.leanplum()
    try:
        for number, part in enumerate(record.parts, start=1):
            if part.job_id:
                continue
            try:
                part.job_id = client.start_import(part.bucket or obj.bucket, part.file)
            except LeanplumError as exc:
                if not record.job_ids:
                    raise
                # Earlier parts are in Leanplum: poll and report them; the file ends FAILED.
                record.start_error = _part_failed(number, len(record.parts), exc)
                break
            record.job_ids.append(part.job_id)
            services.records.save(record)  # a crash before the next part still names this job
            info(
                "Started the Leanplum job",
                step="start_job",
                job_id=part.job_id,
                part=part.file,
                **obj.fields,
            )
    except AnswerLost as exc:
        end(State.FAILED, f"{exc.message}; {ANSWER_LOST_ADVICE}")
        return "failed"
    except (RateLimited, ServerError, ConnectionFailed):
        # Leanplum answered (or was never reached) and made no job: nothing is ambiguous,
        # so go back a step and let Eventarc redeliver the event, bounded by MAX_ATTEMPTS.
        services.records.save(record, State.VALIDATED)
        raise
    except LeanplumError as exc:
        end(State.FAILED, exc.message)
        return "failed"
    finally:
        client.close()
    record.timings.job_started_at = now_iso()
    services.records.save(record, State.JOB_STARTED)
    schedule_poll(record, services)
    return "job_started"


def _part_failed(number: int, total: int, exc: LeanplumError) -> str:
    advice = f"; {ANSWER_LOST_ADVICE}" if isinstance(exc, AnswerLost) else ""
    return f"part {number} of {total} could not start: {exc.message}{advice}"
