"""Cloud Storage access: one client factory and the few pinned operations the importer needs.

Every read names the generation it means and every write names the generation it expects
(``if_generation_match``), so a file replaced while we work is never mixed up with the one the
event announced. The storage client retries these calls by itself only because they carry a
precondition (python-storage's ``DEFAULT_RETRY_IF_GENERATION_SPECIFIED``), which makes a retry
safe.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]
from google.cloud.storage.retry import DEFAULT_RETRY

from functions.errors import StaleGenerationError

CHUNK_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 120


@lru_cache(maxsize=1)
def client() -> storage.Client:
    """The storage client; anonymous against the emulator named by ``STORAGE_EMULATOR_HOST``."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="local", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


def gs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


@dataclass(frozen=True)
class Download:
    """What a pinned download produced: its size and digests, for records and messages."""

    size: int
    sha256: str


def download_to_file(bucket: str, name: str, generation: int, target: BinaryIO) -> Download:
    """Stream one object generation into ``target``, hashing on the way.

    :raises StaleGenerationError: the generation no longer exists (the object was replaced or
        deleted; its newer generation has its own event).
    """
    blob = client().bucket(bucket).blob(name, generation=generation)
    digest = hashlib.sha256()
    size = 0
    try:
        with blob.open("rb", chunk_size=CHUNK_BYTES * 8, timeout=TIMEOUT_SECONDS) as reader:
            while chunk := reader.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
    except gexc.NotFound as exc:
        raise StaleGenerationError(f"gs://{bucket}/{name}#{generation} no longer exists") from exc
    target.flush()
    return Download(size=size, sha256=digest.hexdigest())


def upload_file(
    bucket: str,
    name: str,
    source: BinaryIO,
    *,
    if_generation_match: int | None,
    content_type: str = "text/csv; charset=utf-8",
    metadata: dict[str, str] | None = None,
) -> int:
    """Upload ``source`` to ``name`` only if its live generation is ``if_generation_match``.

    ``if_generation_match=0`` means "only if it does not exist yet"; ``None`` means no
    precondition (an object only the importer writes, such as a report). Returns the new
    generation.

    :raises StaleGenerationError: the precondition failed (HTTP 412).
    """
    blob = client().bucket(bucket).blob(name)
    if metadata:
        blob.metadata = metadata
    source.seek(0, os.SEEK_END)
    size = source.tell()
    try:
        # The size lets the client choose a single-request upload up to 8 MiB and a resumable
        # one above; both carry the precondition to GCS.
        blob.upload_from_file(
            source,
            size=size,
            rewind=True,
            content_type=content_type,
            if_generation_match=if_generation_match,
            timeout=TIMEOUT_SECONDS,
            retry=DEFAULT_RETRY,
        )
    except gexc.PreconditionFailed as exc:
        raise StaleGenerationError(
            f"gs://{bucket}/{name} is no longer at generation {if_generation_match}"
        ) from exc
    assert blob.generation is not None
    return int(blob.generation)


def upload_bytes(
    bucket: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    if_generation_match: int | None = None,
) -> int:
    """Upload a small object (a report, a record); returns its generation.

    :raises StaleGenerationError: the precondition failed (HTTP 412).
    """
    return upload_file(
        bucket, name, io.BytesIO(data), content_type=content_type,
        if_generation_match=if_generation_match,
    )  # fmt: skip


def read_bytes(bucket: str, name: str) -> tuple[bytes, int] | None:
    """A small object's bytes and generation, or ``None`` when it does not exist."""
    blob = client().bucket(bucket).blob(name)
    try:
        data = blob.download_as_bytes(timeout=TIMEOUT_SECONDS, retry=DEFAULT_RETRY)
    except gexc.NotFound:
        return None
    assert blob.generation is not None
    return data, int(blob.generation)


def copy_generation(bucket: str, name: str, generation: int, destination: str) -> None:
    """Copy one pinned generation to ``destination`` (used to archive the original upload).

    An archive that already exists is left as it is: a redelivered event copies nothing twice.
    """
    source_bucket = client().bucket(bucket)
    source = source_bucket.blob(name, generation=generation)
    try:
        source_bucket.copy_blob(
            source,
            source_bucket,
            destination,
            source_generation=generation,
            if_generation_match=0,
            timeout=TIMEOUT_SECONDS,
            retry=DEFAULT_RETRY,
        )
    except gexc.PreconditionFailed:
        return
    except gexc.NotFound as exc:
        raise StaleGenerationError(f"gs://{bucket}/{name}#{generation} no longer exists") from exc
