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
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from functions import gcs, records
from functions.config import ARCHIVE_PREFIX, RECORDS_PREFIX, REPORTS_PREFIX, RESERVED_PREFIX, Config
from functions.errors import ImporterError, StaleGenerationError
from functions.leanplum import AnswerLost, LeanplumClient, LeanplumError
from functions.logs import info, warning
from functions.poll_tasks import enqueue_poll
from functions.records import ImportRecord
from functions.results import build_message, publish_if_pending, publish_stored_result
from functions.validation import (
    LEANPLUM_MAX_FILE_BYTES,
    ValidationOptions,
    split_by_user,
    validate_csv,
)

#: Metadata key on our rewrite naming the generation it replaced; a hint, checked in the record.
SOURCE_GENERATION_KEY = "leanplum-importer-source-generation"
#: Parts stay under Leanplum's 100 MB, read as decimal megabytes to keep a margin.
MAX_PART_BYTES = min(LEANPLUM_MAX_FILE_BYTES, 100_000_000)
PARTS_PREFIX = RESERVED_PREFIX + "parts/"
#: Deliveries of one file that may fail before it ends as FAILED instead of being retried again
#: (Eventarc would otherwise redeliver a file that always crashes for a day).
MAX_ATTEMPTS = 5


class RetryLater(ImporterError):
    """Another delivery holds the file's lease; raising makes Eventarc redeliver later."""


@dataclass(frozen=True)
class FinalizedObject:
    """The fields of a ``google.cloud.storage.object.v1.finalized`` event the importer uses."""

    bucket: str
    name: str
    generation: int
    md5_hash: str | None
    metadata: dict[str, str]
    time_created: str | None

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> FinalizedObject:
        return cls(
            bucket=str(data["bucket"]),
            name=str(data["name"]),
            generation=int(data["generation"]),
            md5_hash=data.get("md5Hash"),
            metadata=dict(data.get("metadata") or {}),
            time_created=data.get("timeCreated"),
        )

    @property
    def fields(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "object": self.name, "generation": str(self.generation)}


def is_importable(name: str, incoming_prefix: str) -> bool:
    """Whether an object is meant for the importer; the reserved prefix never is."""
    return (
        not name.startswith(RESERVED_PREFIX)
        and name.startswith(incoming_prefix)
        and name.lower().endswith(".csv")
    )


def handle_event(data: dict[str, Any], config: Config) -> str:
    """Process one finalize event; returns what happened (for logs and tests).

    Raises only for faults worth a redelivery (:class:`RetryLater`, transient I/O errors).
    """
    obj = FinalizedObject.from_event_data(data)
    if not is_importable(obj.name, config.incoming_prefix):
        info("Ignored: not an importable object", step="filter", **obj.fields)
        return "ignored"
    if _is_own_rewrite(obj):
        info("Ignored: the importer's own rewrite", step="own_rewrite", **obj.fields)
        return "own_rewrite"
    record = _claim(obj, config)
    if record is None:
        return "already_handled"
    try:
        return _process(obj, record, config)
    except StaleGenerationError:
        raise  # another delivery took the record over: it is theirs now
    except Exception as exc:
        _release(record, exc)
        raise


def _release(record: ImportRecord, exc: Exception) -> None:
    """After a failure, give the lease back at once so the redelivery need not wait for it."""
    record.last_error = f"{type(exc).__name__}: {exc}"[:500]
    record.lease_until = 0.0
    with contextlib.suppress(Exception):  # best effort: the lease expires anyway
        records.save(record)


def _is_own_rewrite(obj: FinalizedObject) -> bool:
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


def _claim(obj: FinalizedObject, config: Config) -> ImportRecord | None:
    """Own this file version for ``INGEST_LEASE_SECONDS``, or ``None`` if handled elsewhere."""
    record = ImportRecord(
        bucket=obj.bucket,
        object=obj.name,
        generation=obj.generation,
        lease_until=time.time() + config.ingest_lease_seconds,
    )
    record.uris["uploaded_at"] = obj.time_created
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
        _ensure_poll(existing, config)
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
        _finish(
            existing,
            config,
            "FAILED",
            reason=(
                "the import was interrupted while starting the Leanplum job; a job may exist. "
                "Check Leanplum before uploading the file again."
            ),
        )
        return None
    if existing.attempts >= MAX_ATTEMPTS:
        _finish(
            existing,
            config,
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


def _process(obj: FinalizedObject, record: ImportRecord, config: Config) -> str:
    with tempfile.TemporaryDirectory(prefix="importer-") as tmp:
        work = Path(tmp)
        original = work / "original.csv"
        try:
            download = _download_original(obj, record, original)
        except StaleGenerationError:
            _finish(record, config, "SUPERSEDED", reason="the file was replaced before it was read")
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

        if config.duplicate_policy == "skip" and _is_duplicate(record):
            _finish(
                record,
                config,
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

        _archive_and_report(obj, record, original, rejected)
        if not report.accepted:
            _finish(record, config, "REJECTED", reason=report.refusal_reason)
            return "rejected"

        if not _rewrite_in_place(obj, record, original, normalized):
            _finish(
                record,
                config,
                "SUPERSEDED",
                reason="the file was replaced while it was being validated",
            )
            return "superseded"
        _prepare_parts(obj, record, normalized, work)
    return _start_jobs(obj, record, config)


def _download_original(obj: FinalizedObject, record: ImportRecord, target: Path) -> gcs.Download:
    """The event's generation, or, on a retry after our rewrite, the archived original."""
    archive = record.uris.get("original")
    with target.open("wb") as out:
        try:
            return gcs.download_to_file(obj.bucket, obj.name, obj.generation, out)
        except StaleGenerationError:
            if not archive:
                raise
    with target.open("wb") as out:
        archive_name = archive.removeprefix(f"gs://{obj.bucket}/")
        found = gcs.read_bytes(obj.bucket, archive_name)
        if found is None:
            raise StaleGenerationError(f"{archive} is missing")
        out.write(found[0])
    data = target.read_bytes()
    return gcs.Download(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _is_duplicate(record: ImportRecord) -> bool:
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


def _archive_and_report(
    obj: FinalizedObject, record: ImportRecord, original: Path, rejected: Path
) -> None:
    """Keep the original and the reports where a person can find them from the message."""
    archive = f"{ARCHIVE_PREFIX}{obj.name}/{obj.generation}.csv"
    if "original" not in record.uris:
        try:
            gcs.copy_generation(obj.bucket, obj.name, obj.generation, archive)
        except StaleGenerationError:
            # The event's generation is gone (rewritten by an earlier delivery that crashed
            # before recording the archive): archive the bytes this delivery holds.
            with original.open("rb") as src, contextlib.suppress(StaleGenerationError):
                gcs.upload_file(obj.bucket, archive, src, if_generation_match=0)
        record.uris["original"] = gcs.gs_uri(obj.bucket, archive)
    reports = f"{REPORTS_PREFIX}{obj.name}/{obj.generation}/"
    gcs.upload_bytes(
        obj.bucket,
        reports + "report.json",
        json.dumps(record.report, indent=1, ensure_ascii=False).encode(),
        content_type="application/json",
    )
    record.uris["report"] = gcs.gs_uri(obj.bucket, reports + "report.json")
    if record.report.get("rows_rejected"):
        with rejected.open("rb") as src:
            gcs.upload_file(
                obj.bucket,
                reports + "rejected-rows.csv",
                src,
                if_generation_match=None,
            )
        record.uris["rejected_rows"] = gcs.gs_uri(obj.bucket, reports + "rejected-rows.csv")
    info(
        "Archived the original and wrote the report",
        step="archive",
        original=record.uris["original"],
        report=record.uris["report"],
        **obj.fields,
    )


def _rewrite_in_place(
    obj: FinalizedObject, record: ImportRecord, original: Path, normalized: Path
) -> bool:
    """Replace the upload by its normalised form; False when a newer upload replaced it."""
    data_md5 = hashlib.md5()
    data_sha = hashlib.sha256()
    with normalized.open("rb") as src:
        while chunk := src.read(1024 * 1024):
            data_md5.update(chunk)
            data_sha.update(chunk)
    record.output_sha256 = data_sha.hexdigest()
    record.output_md5 = base64.b64encode(data_md5.digest()).decode()
    record.uris["normalized"] = gcs.gs_uri(obj.bucket, obj.name)
    if record.output_sha256 == record.sha256:
        record.output_generation = obj.generation
        records.save(record, "VALIDATED")
        info("Already in Leanplum's format: not rewritten", step="rewrite", **obj.fields)
        return True
    records.save(record, "VALIDATED")  # the md5 is on record before the rewrite's event exists
    try:
        with normalized.open("rb") as src:
            record.output_generation = gcs.upload_file(
                obj.bucket,
                obj.name,
                src,
                if_generation_match=obj.generation,
                metadata={SOURCE_GENERATION_KEY: str(obj.generation)},
            )
    except StaleGenerationError:
        live = gcs.client().bucket(obj.bucket).get_blob(obj.name)
        if live is None or live.md5_hash != record.output_md5:
            info("Stopped: the object was replaced during validation", step="rewrite", **obj.fields)
            return False
        record.output_generation = int(live.generation)  # an earlier delivery's rewrite
    records.save(record)
    info(
        "Rewrote in place",
        step="rewrite",
        output_generation=str(record.output_generation),
        **obj.fields,
    )
    return True


def _prepare_parts(
    obj: FinalizedObject, record: ImportRecord, normalized: Path, work: Path
) -> None:
    """One part (the object itself) or, above Leanplum's limit, parts split between users."""
    rows = int(record.report.get("rows_written", 0))
    size = normalized.stat().st_size
    if size <= MAX_PART_BYTES:
        record.parts = [
            {"file": obj.name, "rows": rows, "bytes": size, "uri": gcs.gs_uri(obj.bucket, obj.name)}
        ]
        return
    paths: list[Path] = []

    def open_part(index: int) -> Any:
        path = work / f"part-{index:03d}.csv"
        paths.append(path)
        return path.open("wb")

    with normalized.open("rb") as src:
        infos = split_by_user(src, MAX_PART_BYTES, open_part)
    record.parts = []
    for part, path in zip(infos, paths, strict=True):
        name = f"{PARTS_PREFIX}{obj.name}/{obj.generation}/part-{part.index + 1:03d}.csv"
        with path.open("rb") as src:
            gcs.upload_file(obj.bucket, name, src, if_generation_match=None)
        record.parts.append(
            {
                "file": name,
                "rows": part.rows,
                "bytes": part.bytes,
                "uri": gcs.gs_uri(obj.bucket, name),
            }
        )
    info("Split into parts", step="split", parts=len(record.parts), **obj.fields)


def _start_jobs(obj: FinalizedObject, record: ImportRecord, config: Config) -> str:
    """Record the attempt, then start one job per part; never resend a lost ``multi``."""
    live = gcs.client().bucket(obj.bucket).get_blob(obj.name)
    if len(record.parts) == 1 and (
        live is None or int(live.generation) != record.output_generation
    ):
        _finish(record, config, "SUPERSEDED", reason="the file was replaced before the job started")
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
            info(
                "Started the Leanplum job",
                step="start_job",
                job_id=part["job_id"],
                part=part["file"],
                **obj.fields,
            )
    except AnswerLost as exc:
        _finish(
            record,
            config,
            "FAILED",
            reason=(
                f"{exc.message}; a Leanplum job may exist for this file, so it was not started "
                "again. Check Leanplum before uploading the file again."
            ),
        )
        return "failed"
    except LeanplumError as exc:
        if record.job_ids:
            reason = f"{exc.message} (after starting jobs {', '.join(record.job_ids)})"
        else:
            reason = exc.message
        _finish(record, config, "FAILED", reason=reason)
        return "failed"
    finally:
        client.close()
    record.job_started_at = records.now_iso()
    records.save(record, "JOB_STARTED")
    _ensure_poll(record, config)
    return "job_started"


def _ensure_poll(record: ImportRecord, config: Config) -> None:
    assert config.tasks_queue and config.poller_url and config.tasks_service_account
    payload = {
        "bucket": record.bucket,
        "object": record.object,
        "generation": str(record.generation),
    }
    name = enqueue_poll(
        queue=config.tasks_queue,
        poller_url=config.poller_url,
        service_account=config.tasks_service_account,
        job_ids=record.job_ids,
        payload=payload,
        delay_seconds=config.poll_first_delay_seconds,
    )
    if record.task_name != name:
        record.task_name = name
        records.save(record)
    info(
        "Scheduled the poller",
        step="enqueue_poll",
        task=name,
        job_ids=record.job_ids,
        bucket=record.bucket,
        object=record.object,
        generation=str(record.generation),
    )


def _finish(record: ImportRecord, config: Config, state: str, *, reason: str | None) -> None:
    """Move to a terminal state and publish its one message (SUPERSEDED publishes none)."""
    status = {"FAILED": "FAILED", "REJECTED": "REJECTED", "DUPLICATE": "DUPLICATE"}.get(state)
    record.reason = reason
    if status is not None:
        record.result = build_message(record, status, reason=reason)
    records.save(record, state)
    if record.result is not None:
        publish_stored_result(record, config.results_topic)
