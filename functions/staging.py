"""The file's copies in the bucket: the original read back, the archive, the reports, the
rewrite in place and, above Leanplum's size limit, the parts.

Reads are pinned to the event's generation and the rewrite is conditional on it, so a newer
upload is never overwritten and never mixed with the one the event announced.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from functions.claims import SOURCE_GENERATION_KEY
from functions.errors import StaleGenerationError
from functions.events import FinalizedObject
from functions.import_record import ImportRecord, Part
from functions.lifecycle import State
from functions.logs import info, warning
from functions.naming import PARTS_PREFIX, archive_name, parts_dir, reports_dir
from functions.objects import (
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    gs_uri,
    split_gs_uri,
    write_once,
)
from functions.services import IngestServices
from functions.validation import LEANPLUM_MAX_FILE_BYTES, split_by_user

#: Parts stay under Leanplum's 100 MB, read as decimal megabytes to keep a margin.
MAX_PART_BYTES = min(LEANPLUM_MAX_FILE_BYTES, 100_000_000)
CSV = "text/csv; charset=utf-8"
JSON = "application/json"
_HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Digests:
    """A file's size and digests: sha256 for records and messages, md5 as Cloud Storage has it."""

    size: int
    sha256: str
    md5_b64: str

    @classmethod
    def of_file(cls, path: Path) -> Digests:
        md5, sha = hashlib.md5(), hashlib.sha256()
        size = 0
        with path.open("rb") as src:
            while chunk := src.read(_HASH_CHUNK_BYTES):
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
        return cls(size, sha.hexdigest(), base64.b64encode(md5.digest()).decode())


def download_original(
    obj: FinalizedObject, record: ImportRecord, target: Path, services: IngestServices
) -> Digests:
    """The event's generation, or, on a retry after our rewrite, the archived original.

    :raises StaleGenerationError: the generation is gone and no archive of it exists.
    """
    objects = services.objects
    try:
        with target.open("wb") as out:
            objects.download(obj.bucket, obj.name, obj.generation, out)
    except ObjectNotFound as exc:
        archive = record.uris.original
        found = objects.read(*split_gs_uri(archive)) if archive else None
        if found is None:
            raise StaleGenerationError(
                f"gs://{obj.bucket}/{obj.name}#{obj.generation} is gone"
            ) from exc
        target.write_bytes(found[0])
    return Digests.of_file(target)


def archive_original(
    obj: FinalizedObject,
    record: ImportRecord,
    original: Path,
    digests: Digests,
    services: IngestServices,
) -> None:
    """Keep the uploaded bytes at a stable path named in the result (``uris.original``)."""
    if record.uris.original:
        return
    objects, state = services.objects, services.config.state_bucket
    archive = archive_name(obj.name, obj.generation)
    try:
        objects.copy(obj.bucket, obj.name, obj.generation, state, archive)
    except ObjectNotFound:
        # The event's generation is gone (rewritten by an earlier delivery that crashed before
        # recording the archive): archive the bytes this delivery holds.
        _write_archive(state, archive, original, digests, objects, if_generation_match=0)
    except PreconditionFailed:
        # Already there: an earlier delivery's copy, or our own copy whose answer was lost.
        _write_archive(state, archive, original, digests, objects, if_generation_match=None)
    record.uris.original = gs_uri(state, archive)


def _write_archive(
    bucket: str,
    name: str,
    original: Path,
    digests: Digests,
    objects: ObjectStore,
    *,
    if_generation_match: int | None,
) -> None:
    """Upload the original to ``name`` unless an object with the same bytes is there already."""
    live = objects.stat(bucket, name)
    if live is not None and live.md5_hash in (None, digests.md5_b64):
        return
    if live is not None:
        warning(
            "An archive object with other bytes was replaced",
            step="archive",
            bucket=bucket,
            object=name,
        )
    with original.open("rb") as src:
        write_once(
            objects,
            bucket,
            name,
            src,
            content_type=CSV,
            if_generation_match=live.generation if live else if_generation_match,
        )


def write_reports(
    obj: FinalizedObject, record: ImportRecord, rejected: Path, services: IngestServices
) -> None:
    """The validation report, and the rejected rows with their reasons when there are any."""
    objects, state = services.objects, services.config.state_bucket
    reports = reports_dir(obj.name, obj.generation)
    body = json.dumps(record.validation.to_report(), indent=1, ensure_ascii=False).encode()
    write_once(
        objects,
        state,
        reports + "report.json",
        body,
        content_type=JSON,
        if_generation_match=None,
    )
    record.uris.report = gs_uri(state, reports + "report.json")
    if record.validation.rows_rejected:
        with rejected.open("rb") as src:
            write_once(
                objects,
                state,
                reports + "rejected-rows.csv",
                src,
                content_type=CSV,
                if_generation_match=None,
            )
        record.uris.rejected_rows = gs_uri(state, reports + "rejected-rows.csv")
    info(
        "Archived the original and wrote the report",
        step="archive",
        original=record.uris.original,
        report=record.uris.report,
        **obj.fields,
    )


def keep_compressed_upload(
    obj: FinalizedObject, record: ImportRecord, services: IngestServices
) -> None:
    """A compressed upload keeps its name and bytes: Leanplum reads the normalised CSV from
    the parts, so nothing is rewritten in place (``uris.normalized`` stays empty)."""
    record.output_generation = obj.generation
    services.records.save(record, State.VALIDATED)
    info("Compressed upload kept as it is", step="rewrite", **obj.fields)


def rewrite_in_place(
    obj: FinalizedObject, record: ImportRecord, normalized: Path, services: IngestServices
) -> bool:
    """Replace the upload by its normalised form; False when a newer upload replaced it.

    ``record.output_md5`` (set by the caller) is on record before the rewrite's event exists.
    """
    record.uris.normalized = gs_uri(obj.bucket, obj.name)
    if record.output_sha256 == record.sha256:
        record.output_generation = obj.generation
        services.records.save(record, State.VALIDATED)
        info("Already in Leanplum's format: not rewritten", step="rewrite", **obj.fields)
        return True
    services.records.save(record, State.VALIDATED)  # see claims.is_own_rewrite
    try:
        with normalized.open("rb") as src:
            written = write_once(
                services.objects,
                obj.bucket,
                obj.name,
                src,
                content_type=CSV,
                if_generation_match=obj.generation,
                metadata={SOURCE_GENERATION_KEY: str(obj.generation)},
            )
        record.output_generation = written.generation
    except StaleGenerationError:
        live = services.objects.stat(obj.bucket, obj.name)
        if live is None or live.md5_hash != record.output_md5:
            info("Stopped: the object was replaced during validation", step="rewrite", **obj.fields)
            return False
        record.output_generation = live.generation  # an earlier delivery's rewrite
    services.records.save(record)
    info(
        "Rewrote in place",
        step="rewrite",
        output_generation=str(record.output_generation),
        **obj.fields,
    )
    return True


def prepare_parts(
    obj: FinalizedObject,
    record: ImportRecord,
    normalized: Path,
    work: Path,
    services: IngestServices,
) -> None:
    """The files Leanplum reads: under the reserved prefix, written once by the importer, so
    that no later upload under the upload's name can change what a job imports or what the
    poller joins its results to. One part, or above Leanplum's limit, parts split between
    users."""
    objects, state = services.objects, services.config.state_bucket
    prefix = parts_dir(obj.name, obj.generation)
    size = normalized.stat().st_size
    if size <= MAX_PART_BYTES:
        name = prefix + "part-001.csv"
        with normalized.open("rb") as src:
            write_once(objects, state, name, src, content_type=CSV, if_generation_match=None)
        rows = record.validation.rows_written
        record.parts = [Part(name, rows, size, gs_uri(state, name), bucket=state)]
        return
    paths: list[Path] = []
    handles: list[BinaryIO] = []

    def open_part(index: int) -> BinaryIO:
        path = work / f"part-{index:03d}.csv"
        paths.append(path)
        handles.append(path.open("wb"))
        return handles[-1]

    try:
        with normalized.open("rb") as src:
            infos = split_by_user(src, MAX_PART_BYTES, open_part)
    finally:
        for handle in handles:  # the splitter leaves closing (and so flushing) to its caller
            handle.close()
    record.parts = []
    for part, path in zip(infos, paths, strict=True):
        name = f"{prefix}part-{part.index + 1:03d}.csv"
        with path.open("rb") as src:
            write_once(objects, state, name, src, content_type=CSV, if_generation_match=None)
        path.unlink()  # uploaded: free its share of the memory-backed /tmp at once
        record.parts.append(Part(name, part.rows, part.bytes, gs_uri(state, name), bucket=state))
    info("Split into parts", step="split", parts=len(record.parts), **obj.fields)


def copy_for_leanplum(record: ImportRecord, services: IngestServices) -> None:
    """With ``LEANPLUM_BUCKET`` set, copy each part there (server-side) for ``multi`` to name.

    Create-only at a name derived from the version, so a retry after a crash finds its own copy.
    The parts in the state bucket stay the importer's reference (the results join reads them).
    """
    config = services.config
    if config.leanplum_bucket is None:
        return
    state = config.state_bucket
    for part in record.parts:
        if part.leanplum_copy:
            continue
        name = config.leanplum_bucket_prefix + part.file.removeprefix(PARTS_PREFIX)
        source = services.objects.stat(part.bucket or state, part.file)
        if source is None:
            raise ObjectNotFound(f"{gs_uri(state, part.file)}: the part vanished before its copy")
        try:
            services.objects.copy(part.bucket or state, part.file, source.generation,
                                  config.leanplum_bucket, name)  # fmt: skip
        except PreconditionFailed:
            pass  # copied by an earlier attempt of this version (same name, same bytes)
        part.leanplum_copy = gs_uri(config.leanplum_bucket, name)
    services.records.save(record)
    info("Copied the files for Leanplum", step="copy", copies=record.leanplum_copies,
         **record.fields)  # fmt: skip
