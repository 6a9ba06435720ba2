"""Owning one file version: the claim, the lease, and recognising what needs no job.

Every decision here is a compare-and-swap on the import record (:mod:`functions.records`) or a
create-only write, so two deliveries of the same event can never both go on:

- :func:`claim` creates the record of a generation (``if_generation_match=0``) and holds a
  lease; a later delivery stops, waits (:class:`RetryLater`) or takes over an expired lease;
- :func:`is_own_rewrite` recognises the event of the importer's own rewrite through the record
  of the generation it replaced (metadata only says which record to read);
- :mod:`functions.content_claims` claims the file's content for its object name, so identical
  bytes uploaded again start no second job.
"""

from __future__ import annotations

import contextlib

from functions.errors import ImporterError, StaleGenerationError
from functions.events import FinalizedObject
from functions.file_end import end_file
from functions.import_record import ImportRecord, Timings
from functions.job_start import recover_interrupted_start, schedule_poll
from functions.lifecycle import State, publish_pending
from functions.logs import info, warning
from functions.services import IngestServices

#: Metadata key on our rewrite naming the generation it replaced; a hint, checked in the record.
SOURCE_GENERATION_KEY = "leanplum-importer-source-generation"
#: Deliveries of one file that may fail before it ends as FAILED instead of being retried again
#: (Eventarc would otherwise redeliver a file that always crashes for a day).
MAX_ATTEMPTS = 5
#: The last error kept in the record (and quoted in a FAILED result) is cut to this length.
MAX_ERROR_CHARS = 500


class RetryLater(ImporterError):
    """Another delivery holds the file's lease; raising makes Eventarc redeliver later."""


def claim(obj: FinalizedObject, services: IngestServices) -> ImportRecord | None:
    """Own this file version for ``INGEST_LEASE_SECONDS``, or ``None`` if handled elsewhere."""
    lease = services.config.ingest_lease_seconds
    records = services.records
    record = ImportRecord(
        bucket=obj.bucket,
        object=obj.name,
        generation=obj.generation,
        lease_until=services.clock() + lease,
        timings=Timings(uploaded_at=obj.time_created),
    )
    if records.create(record):
        info("Claimed the file", step="claim", **obj.fields)
        return record
    existing = records.load(obj.bucket, obj.name, obj.generation)
    if existing is None:  # deleted between our create and load: let the event come back
        raise RetryLater("import record vanished while claiming")
    if existing.terminal:
        publish_pending(existing, records=records, publisher=services.publisher)
        info(
            "Duplicate event: file already handled",
            step="claim",
            state=existing.state,
            **obj.fields,
        )
        return None
    if existing.state == State.JOB_STARTED:
        schedule_poll(existing, services)
        info(
            "Duplicate event: job already started",
            step="claim",
            job_ids=existing.job_ids,
            **obj.fields,
        )
        return None
    if existing.state == State.QUEUED and services.starts is not None:
        # Waiting for a job slot: the start queue owns it now; make sure its task exists.
        services.starts.ensure_start(existing)
        info("Duplicate event: file waiting for a job slot", step="claim", **obj.fields)
        return None
    if existing.lease_until > services.clock():
        raise RetryLater(f"{obj.name}#{obj.generation} is being processed by another delivery")
    if existing.state == State.JOB_STARTING:
        # A delivery died between recording the attempt and recording the job id: Leanplum may
        # or may not have a job. Starting another could import every row twice.
        recover_interrupted_start(existing, services)
        return None
    if existing.attempts >= MAX_ATTEMPTS:
        reason = f"processing failed {existing.attempts} times; last error: {existing.last_error}"
        _fail(existing, services, reason)
        return None
    existing.attempts += 1
    existing.lease_until = services.clock() + lease
    try:
        records.save(existing)
    except StaleGenerationError as exc:
        raise RetryLater("another delivery took over the file first") from exc
    warning("Took over an expired lease", step="claim", state=existing.state, **obj.fields)
    return existing


def _fail(record: ImportRecord, services: IngestServices, reason: str) -> None:
    end_file(record, State.FAILED, reason, services)


def release(record: ImportRecord, exc: Exception, services: IngestServices) -> None:
    """After a failure, give the lease back at once so the redelivery need not wait for it."""
    record.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    record.lease_until = 0.0
    with contextlib.suppress(Exception):  # best effort: the lease expires anyway
        services.records.save(record)


def is_own_rewrite(obj: FinalizedObject, services: IngestServices) -> bool:
    """True when ``obj`` is the rewrite the importer made of an earlier generation.

    The metadata key only says which record to look at; an uploader could set it too, so the
    record must confirm: our rewrite's md5 (known before the upload) or generation must match.
    """
    hint = obj.metadata.get(SOURCE_GENERATION_KEY, "")
    if not hint.isdigit():
        return False
    source = services.records.load(obj.bucket, obj.name, int(hint))
    if source is None:
        return False
    return source.output_generation == obj.generation or (
        source.output_md5 is not None and source.output_md5 == obj.md5_hash
    )
