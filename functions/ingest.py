"""The ingest function's work: one finalized object in, at most one Leanplum job out.

Steps, each logged as one structured line (``step`` field) and each guarded by the import
record (:mod:`functions.records`):

1. ``filter``: only ``INCOMING_PREFIX``/``*.csv`` objects; the reserved prefix never.
2. ``own_rewrite``: the event of our own in-place rewrite is recognised through the record of
   the generation it replaced (metadata only points at that record; the record decides).
3. ``claim``: create the record of this generation with ``if_generation_match=0``. A
   redelivered or concurrent event finds it and stops, or takes over an expired lease.
4. ``download`` pinned to the event's generation (or the archived copy on a retry), hashing.
5. ``duplicate``: a per-object content claim keyed by sha256; identical bytes already imported
   end as DUPLICATE without a job (``DUPLICATE_POLICY=import`` turns this off).
6. ``validate`` into a normalised file and a rejected-rows file; reports to the bucket.
7. ``archive`` the original, then ``rewrite`` in place with ``if_generation_match`` = the
   event's generation (a 412 means a newer upload: stop quietly, it has its own event).
8. ``start_job``: record JOB_STARTING first, then ``multi``; a lost answer is never resent.
9. ``enqueue_poll``: a task named after the job ids (a duplicate is refused by Cloud Tasks).

This module orders the steps; :mod:`functions.events` reads the event, :mod:`functions.claims`
owns the file version (steps 2, 3, 5), :mod:`functions.staging` keeps its copies in the bucket
(steps 4, 7) and :mod:`functions.validation` does step 6.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from functions import gcs, records, staging
from functions.claims import claim, is_duplicate, is_own_rewrite, release
from functions.config import Config
from functions.errors import StaleGenerationError
from functions.events import FinalizedObject, is_importable
from functions.leanplum import (
    AnswerLost,
    ConnectionFailed,
    LeanplumClient,
    LeanplumError,
    RateLimited,
    ServerError,
)
from functions.logs import info
from functions.poll_tasks import ensure_poll
from functions.records import ImportRecord
from functions.results import finish
from functions.validation import ValidationOptions, validate_csv


def handle_event(data: dict[str, Any], config: Config) -> str:
    """Process one finalize event; returns what happened (for logs and tests).

    Raises only for faults worth a redelivery (:class:`RetryLater`, transient I/O errors).
    """
    obj = FinalizedObject.from_event_data(data)
    if not is_importable(obj.name, config.incoming_prefix):
        info("Ignored: not an importable object", step="filter", **obj.fields)
        return "ignored"
    if is_own_rewrite(obj):
        info("Ignored: the importer's own rewrite", step="own_rewrite", **obj.fields)
        return "own_rewrite"
    record = claim(obj, config)
    if record is None:
        return "already_handled"
    try:
        return _process(obj, record, config)
    except StaleGenerationError:
        raise  # another delivery took the record over: it is theirs now
    except Exception as exc:
        release(record, exc)
        raise


def _process(obj: FinalizedObject, record: ImportRecord, config: Config) -> str:
    with tempfile.TemporaryDirectory(prefix="importer-") as tmp:
        work = Path(tmp)
        original = work / "original.csv"
        try:
            download = staging.download_original(obj, record, original)
        except StaleGenerationError:
            finish(
                record,
                config.results_topic,
                "SUPERSEDED",
                reason="the file was replaced before it was read",
            )
            info("Stopped: the object was replaced", step="download", **obj.fields)
            return "superseded"
        record.sha256, record.size_bytes = download.sha256, download.size
        info(
            "Downloaded",
            step="download",
            size_bytes=download.size,
            sha256=download.sha256,
            **obj.fields,
        )

        if config.duplicate_policy == "skip" and is_duplicate(record):
            finish(
                record,
                config.results_topic,
                "DUPLICATE",
                reason="identical bytes were already imported under this name",
            )
            return "duplicate"

        normalized, rejected = work / "normalized.csv", work / "rejected.csv"
        options = ValidationOptions(
            now=datetime.fromisoformat(record.created_at).replace(microsecond=0),
            old_event_policy=config.old_event_policy,
            max_future_seconds=config.max_future_seconds,
            max_rejected_fraction=config.max_rejected_fraction,
            temp_dir=tmp,
        )
        with original.open("rb") as src, normalized.open("wb") as out, rejected.open("wb") as rej:
            report = validate_csv(src, out, rej, options)
        record.report = report.to_dict()
        info(
            "Validated",
            step="validate",
            accepted=report.accepted,
            rows_total=report.rows_total,
            rows_rejected=report.rows_rejected,
            rows_time_clamped=report.rows_time_clamped,
            **obj.fields,
        )

        staging.archive_and_report(obj, record, original, rejected)
        if not report.accepted:
            finish(record, config.results_topic, "REJECTED", reason=report.refusal_reason)
            return "rejected"

        if not staging.rewrite_in_place(obj, record, original, normalized):
            finish(
                record,
                config.results_topic,
                "SUPERSEDED",
                reason="the file was replaced while it was being validated",
            )
            return "superseded"
        staging.prepare_parts(obj, record, normalized, work)
    return _start_jobs(obj, record, config)


def _start_jobs(obj: FinalizedObject, record: ImportRecord, config: Config) -> str:
    """Record the attempt, then start one job per part; never resend a lost ``multi``."""
    live = gcs.client().bucket(obj.bucket).get_blob(obj.name)
    if len(record.parts) == 1 and (
        live is None or int(live.generation) != record.output_generation
    ):
        info("Stopped: the object was replaced before the job started", step="start_job",
             **obj.fields)  # fmt: skip
        finish(
            record,
            config.results_topic,
            "SUPERSEDED",
            reason="the file was replaced before the job started",
        )
        return "superseded"
    records.save(record, "JOB_STARTING")
    client = LeanplumClient(
        config.leanplum_api_url, config.leanplum_app_id, config.leanplum_dev_key
    )
    try:
        for part in record.parts:
            if part.get("job_id"):
                continue
            part["job_id"] = client.start_import(obj.bucket, part["file"])
            record.job_ids.append(part["job_id"])
            records.save(record)  # a crash before the next part still names this job
            info(
                "Started the Leanplum job",
                step="start_job",
                job_id=part["job_id"],
                part=part["file"],
                **obj.fields,
            )
    except AnswerLost as exc:
        finish(
            record,
            config.results_topic,
            "FAILED",
            reason=(
                f"{exc.message}; a Leanplum job may exist for this file, so it was not started "
                "again. Check Leanplum before uploading the file again."
            ),
        )
        return "failed"
    except (RateLimited, ServerError, ConnectionFailed) as exc:
        if not record.job_ids:
            # Leanplum answered (or was never reached) and made no job: nothing is ambiguous,
            # so go back a step and let Eventarc redeliver the event, bounded by MAX_ATTEMPTS.
            records.save(record, "VALIDATED")
            raise
        finish(
            record,
            config.results_topic,
            "FAILED",
            reason=(f"{exc.message} (after starting jobs {', '.join(record.job_ids)})"),
        )
        return "failed"
    except LeanplumError as exc:
        if record.job_ids:
            reason = f"{exc.message} (after starting jobs {', '.join(record.job_ids)})"
        else:
            reason = exc.message
        finish(record, config.results_topic, "FAILED", reason=reason)
        return "failed"
    finally:
        client.close()
    record.job_started_at = records.now_iso()
    records.save(record, "JOB_STARTED")
    ensure_poll(record, config)
    return "job_started"
