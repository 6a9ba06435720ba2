"""Owning one file version: the claim, the lease, and recognising what needs no job.

Every decision here is a compare-and-swap on the import record (:mod:`functions.records`) or a
create-only write, so two deliveries of the same event can never both go on:

- :func:`claim` creates the record of a generation (``if_generation_match=0``) and holds a
  lease; a later delivery stops, waits (:class:`RetryLater`) or takes over an expired lease;
- :func:`is_own_rewrite` recognises the event of the importer's own rewrite through the record
  of the generation it replaced (metadata only says which record to read);
- :func:`is_duplicate` claims the file's content (sha256) for its object name, so identical
  bytes uploaded again start no second job.
"""

from __future__ import annotations

import contextlib
import json
import time

from functions import gcs, records
from functions.config import RECORDS_PREFIX, Config
from functions.errors import ImporterError, StaleGenerationError
from functions.events import FinalizedObject
from functions.logs import info, warning
from functions.poll_tasks import ensure_poll
from functions.records import ImportRecord
from functions.results import finish, publish_if_pending

#: Metadata key on our rewrite naming the generation it replaced; a hint, checked in the record.
SOURCE_GENERATION_KEY = "leanplum-importer-source-generation"
#: Deliveries of one file that may fail before it ends as FAILED instead of being retried again
#: (Eventarc would otherwise redeliver a file that always crashes for a day).
MAX_ATTEMPTS = 5


class RetryLater(ImporterError):
    """Another delivery holds the file's lease; raising makes Eventarc redeliver later."""


def claim(obj: FinalizedObject, config: Config) -> ImportRecord | None:
    """Own this file version for ``INGEST_LEASE_SECONDS``, or ``None`` if handled elsewhere."""
    record = ImportRecord(
        bucket=obj.bucket,
        object=obj.name,
        generation=obj.generation,
        lease_until=time.time() + config.ingest_lease_seconds,
        uploaded_at=obj.time_created,
    )
    if records.create(record):
        info("Claimed the file", step="claim", **obj.fields)
        return record
    existing = records.load(obj.bucket, obj.name, obj.generation)
    if existing is None:  # deleted between our create and load: let the event come back
        raise RetryLater("import record vanished while claiming")
    if existing.terminal:
        publish_if_pending(existing, config.results_topic)
        info(
            "Duplicate event: file already handled",
            step="claim",
            state=existing.state,
            **obj.fields,
        )
        return None
    if existing.state == "JOB_STARTED":
        ensure_poll(existing, config)
        info(
            "Duplicate event: job already started",
            step="claim",
            job_ids=existing.job_ids,
            **obj.fields,
        )
        return None
    if existing.lease_until > time.time():
        raise RetryLater(f"{obj.name}#{obj.generation} is being processed by another delivery")
    if existing.state == "JOB_STARTING":
        # A delivery died between recording the attempt and recording the job id: Leanplum may
        # or may not have a job. Starting another could import every row twice.
        finish(
            existing,
            config.results_topic,
            "FAILED",
            reason=(
                "the import was interrupted while starting the Leanplum job; a job may exist. "
                "Check Leanplum before uploading the file again."
            ),
        )
        return None
    if existing.attempts >= MAX_ATTEMPTS:
        finish(
            existing,
            config.results_topic,
            "FAILED",
            reason=(
                f"processing failed {existing.attempts} times; last error: {existing.last_error}"
            ),
        )
        return None
    existing.attempts += 1
    existing.lease_until = time.time() + config.ingest_lease_seconds
    try:
        records.save(existing)
    except StaleGenerationError as exc:
        raise RetryLater("another delivery took over the file first") from exc
    warning("Took over an expired lease", step="claim", state=existing.state, **obj.fields)
    return existing


def release(record: ImportRecord, exc: Exception) -> None:
    """After a failure, give the lease back at once so the redelivery need not wait for it."""
    record.last_error = f"{type(exc).__name__}: {exc}"[:500]
    record.lease_until = 0.0
    with contextlib.suppress(Exception):  # best effort: the lease expires anyway
        records.save(record)


def is_own_rewrite(obj: FinalizedObject) -> bool:
    """True when ``obj`` is the rewrite the importer made of an earlier generation.

    The metadata key only says which record to look at; an uploader could set it too, so the
    record must confirm: our rewrite's md5 (known before the upload) or generation must match.
    """
    hint = obj.metadata.get(SOURCE_GENERATION_KEY, "")
    if not hint.isdigit():
        return False
    source = records.load(obj.bucket, obj.name, int(hint))
    if source is None:
        return False
    return source.output_generation == obj.generation or (
        source.output_md5 is not None and source.output_md5 == obj.md5_hash
    )


def is_duplicate(record: ImportRecord) -> bool:
    """Claim this content for this object name; True when another version already owns it.

    A claim whose owner was rejected or superseded does not count (the person fixed the
    problem and uploaded again, or the file never reached Leanplum).
    """
    assert record.sha256 is not None
    claim_name = f"{RECORDS_PREFIX}{record.object}/sha256-{record.sha256}.json"
    body = json.dumps({"generation": record.generation}).encode()
    try:
        gcs.upload_bytes(
            record.bucket, claim_name, body, content_type="application/json", if_generation_match=0
        )
        return False
    except StaleGenerationError:
        pass
    found = gcs.read_bytes(record.bucket, claim_name)
    if found is None:
        return False
    owner_generation = int(json.loads(found[0])["generation"])
    if owner_generation == record.generation:
        return False
    owner = records.load(record.bucket, record.object, owner_generation)
    if owner is not None and owner.state in ("REJECTED", "SUPERSEDED"):
        gcs.upload_bytes(
            record.bucket,
            claim_name,
            body,
            content_type="application/json",
            if_generation_match=found[1],
        )
        return False
    info(
        "Duplicate content",
        step="duplicate",
        duplicate_of=str(owner_generation),
        bucket=record.bucket,
        object=record.object,
        generation=str(record.generation),
    )
    return True
