"""The file's copies in the bucket: the original read back, the archive, the reports, the
rewrite in place and, above Leanplum's size limit, the parts.

Reads are pinned to the event's generation and the rewrite is conditional on it, so a newer
upload is never overwritten and never mixed with the one the event announced.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from functions import gcs, records
from functions.claims import SOURCE_GENERATION_KEY
from functions.config import ARCHIVE_PREFIX, REPORTS_PREFIX, RESERVED_PREFIX
from functions.errors import StaleGenerationError
from functions.events import FinalizedObject
from functions.logs import info
from functions.records import ImportRecord
from functions.validation import LEANPLUM_MAX_FILE_BYTES, split_by_user

#: Parts stay under Leanplum's 100 MB, read as decimal megabytes to keep a margin.
MAX_PART_BYTES = min(LEANPLUM_MAX_FILE_BYTES, 100_000_000)
PARTS_PREFIX = RESERVED_PREFIX + "parts/"


def download_original(obj: FinalizedObject, record: ImportRecord, target: Path) -> gcs.Download:
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


def archive_and_report(
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


def rewrite_in_place(
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


def prepare_parts(obj: FinalizedObject, record: ImportRecord, normalized: Path, work: Path) -> None:
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
