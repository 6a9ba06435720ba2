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
8. ``dry_run``: a name routed to no app ends here, with its counts (:mod:`functions.leanplum_apps`).
9. ``copy``: with ``LEANPLUM_BUCKET`` set, the files Leanplum reads are copied there.
10. ``start_job``: a job slot, JOB_STARTING recorded, then ``multi``; a lost answer is never
    resent. With every slot taken the file is QUEUED and the start queue asks again.
11. ``enqueue_poll``: a task named after the job ids (a duplicate is refused by Cloud Tasks).

This module orders the steps; :mod:`functions.events` reads the event, :mod:`functions.claims`
owns the file version (steps 2, 3, 5), :mod:`functions.staging` keeps its copies in the bucket
(steps 4, 7), :mod:`functions.validation` does step 6 and :mod:`functions.job_start` step 8.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from functions import staging
from functions.claims import claim, is_own_rewrite, release
from functions.compression import DecompressionRefused, Limits, gunzip, refusal, sniff
from functions.content_claims import duplicate_owner
from functions.errors import StaleGenerationError
from functions.events import FinalizedObject
from functions.file_end import end_file
from functions.import_record import ImportRecord, ValidationSummary
from functions.job_start import start_jobs
from functions.leanplum_apps import DRY_RUN
from functions.lifecycle import State
from functions.logs import info
from functions.object_rules import ignore_reason
from functions.services import IngestServices
from functions.validation import ValidationOptions, validate_csv


def handle_event(data: dict[str, Any], services: IngestServices) -> str:
    """Process one finalize event; returns what happened (for logs and tests).

    Raises only for faults worth a redelivery (:class:`~functions.claims.RetryLater`,
    transient I/O errors).
    """
    obj = FinalizedObject.from_event_data(data)
    reason = ignore_reason(obj.name, obj.size, services.config.incoming_prefix)
    if reason is not None:
        info(f"Ignored: {reason}", step="filter", rule=reason, **obj.fields)
        return "ignored"
    if is_own_rewrite(obj, services):
        info("Ignored: the importer's own rewrite", step="own_rewrite", **obj.fields)
        return "own_rewrite"
    record = claim(obj, services)
    if record is None:
        return "already_handled"
    try:
        return _process(obj, record, services)
    except StaleGenerationError:
        raise  # another delivery took the record over: it is theirs now
    except Exception as exc:
        release(record, exc, services)
        raise


def _end(record: ImportRecord, state: State, reason: str | None, services: IngestServices) -> None:
    end_file(record, state, reason, services)


def _is_duplicate(record: ImportRecord, sha256: str, services: IngestServices, what: str) -> bool:
    """End ``record`` as DUPLICATE when another version already sent these bytes."""
    if services.config.duplicate_policy != "skip":
        return False
    owner = duplicate_owner(record, sha256, services)
    if owner is None:
        return False
    reason = f"{what} imported under this name (generation {owner})"
    _end(record, State.DUPLICATE, reason, services)
    return True


def _decode(
    obj: FinalizedObject,
    record: ImportRecord,
    original: Path,
    digests: staging.Digests,
    work: Path,
    *,
    services: IngestServices,
) -> Path | None:
    """The upload as CSV: itself, or its gzip content (bounded); ``None`` when refused (the
    record then ends REJECTED, the original archived)."""
    with original.open("rb") as head:
        kind = sniff(head.read(8))
    reason = refusal(kind)
    if kind == "gzip":
        decoded = work / "decoded.csv"
        config = services.config
        limits = Limits(config.max_decompressed_bytes, config.max_compression_ratio)
        try:
            size = gunzip(original, decoded, limits)
        except DecompressionRefused as exc:
            reason = str(exc)
        else:
            info("Decompressed", step="decompress", size_bytes=size, **obj.fields)
            return decoded
    if reason is None:
        return original
    staging.archive_original(obj, record, original, digests, services)
    _end(record, State.REJECTED, reason, services)
    return None


def _process(obj: FinalizedObject, record: ImportRecord, services: IngestServices) -> str:
    config = services.config
    with tempfile.TemporaryDirectory(prefix="importer-") as tmp:
        work = Path(tmp)
        original = work / "original.csv"
        try:
            digests = staging.download_original(obj, record, original, services)
        except StaleGenerationError:
            _end(record, State.SUPERSEDED, "the file was replaced before it was read", services)
            info("Stopped: the object was replaced", step="download", **obj.fields)
            return "superseded"
        record.sha256, record.size_bytes = digests.sha256, digests.size
        record.app = config.leanplum_app_routes.app_for(obj.name)
        record.app_id = (
            None if record.app == DRY_RUN else config.leanplum_app_routes.get(record.app).app_id
        )
        services.records.save(record)  # the digest is on record before any claim names it
        info(
            "Downloaded",
            step="download",
            size_bytes=digests.size,
            sha256=digests.sha256,
            **obj.fields,
        )

        if _is_duplicate(record, digests.sha256, services, "identical bytes were already"):
            return "duplicate"

        decoded = _decode(obj, record, original, digests, work, services=services)
        if decoded is None:
            return "rejected"
        normalized, rejected = work / "normalized.csv", work / "rejected.csv"
        options = ValidationOptions(
            now=datetime.fromisoformat(record.timings.received_at).replace(microsecond=0),
            old_event_policy=config.old_event_policy,
            max_future_seconds=config.max_future_seconds,
            max_rejected_fraction=config.max_rejected_fraction,
            min_event_time=datetime.combine(config.min_event_time, time.min, tzinfo=UTC),
            naive_timezone=config.naive_time_zone,
            duplicate_rows=config.duplicate_rows,
            column_map=dict(config.column_map),
            drop_columns=config.drop_columns,
            temp_dir=tmp,
        )
        with decoded.open("rb") as src, normalized.open("wb") as out, rejected.open("wb") as rej:
            report = validate_csv(src, out, rej, options)
        if decoded != original:
            decoded.unlink()  # /tmp is memory in Cloud Functions: a 1 GB shard's copy goes now
        record.validation = ValidationSummary.from_report(report.to_dict())
        info(
            "Validated",
            step="validate",
            accepted=report.accepted,
            rows_total=report.rows_total,
            rows_rejected=report.rows_rejected,
            rows_time_clamped=report.rows_time_clamped,
            **obj.fields,
        )

        staging.archive_original(obj, record, original, digests, services)
        staging.write_reports(obj, record, rejected, services)
        if not report.accepted:
            _end(record, State.REJECTED, report.refusal_reason, services)
            return "rejected"

        output = staging.Digests.of_file(normalized)
        record.output_sha256, record.output_md5 = output.sha256, output.md5_b64
        if output.sha256 != digests.sha256:
            services.records.save(record)
            if _is_duplicate(record, output.sha256, services, "the normalised bytes were already"):
                return "duplicate"
        if decoded != original:
            staging.keep_compressed_upload(obj, record, services)
        elif not staging.rewrite_in_place(obj, record, normalized, services):
            _end(
                record,
                State.SUPERSEDED,
                "the file was replaced while it was being validated",
                services,
            )
            return "superseded"
        if record.app == DRY_RUN:
            info("Dry run: validated and reported, nothing sent", step="dry_run", **obj.fields)
            _end(record, State.DRY_RUN, f"{obj.name} is routed to no Leanplum app", services)
            return "dry_run"
        staging.prepare_parts(obj, record, normalized, work, services)
        staging.copy_for_leanplum(record, services)
    return start_jobs(record, services)
