"""Cloud Storage behind :class:`functions.objects.ObjectStore`: what runs in the cloud.

Every read names the generation it means and every write the generation it expects
(``if_generation_match``), so a file replaced while we work is never mixed up with the one the
event announced. The storage client retries these calls by itself only because they carry a
precondition (python-storage's ``DEFAULT_RETRY_IF_GENERATION_SPECIFIED``), which makes a retry
safe; :func:`functions.objects.write_once` recognises a retry that met its own write.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]
from google.cloud.storage.retry import DEFAULT_RETRY

from functions.objects import (
    AccessDenied,
    ObjectInfo,
    ObjectNotFound,
    PreconditionFailed,
    StorageUnavailable,
)

CHUNK_BYTES = 1024 * 1024
#: Read ahead this much per request when streaming a download (fewer round trips).
DOWNLOAD_CHUNK_BYTES = 8 * CHUNK_BYTES
TIMEOUT_SECONDS = 120


def make_storage_client() -> storage.Client:
    """A storage client; anonymous against the emulator named by ``STORAGE_EMULATOR_HOST``."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="local", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


def _info(blob: Any) -> ObjectInfo:
    created = blob.time_created
    return ObjectInfo(
        bucket=blob.bucket.name,
        name=blob.name,
        generation=int(blob.generation or 0),
        size=int(blob.size or 0),
        md5_hash=blob.md5_hash,
        metadata=dict(blob.metadata or {}),
        time_created=created.isoformat() if isinstance(created, datetime) else None,
    )


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Google's exceptions as the importer's: callers decide on 404, 412 and outages only."""
    try:
        yield
    except gexc.PreconditionFailed as exc:
        raise PreconditionFailed(f"{what}: precondition failed (412)") from exc
    except gexc.NotFound as exc:
        raise ObjectNotFound(f"{what}: not found") from exc
    except gexc.Forbidden as exc:
        raise AccessDenied(f"{what}: access denied (403)") from exc
    except (gexc.ServerError, gexc.TooManyRequests, gexc.RetryError) as exc:
        raise StorageUnavailable(f"{what}: Cloud Storage did not answer ({exc})") from exc


class GcsStore:
    """:class:`~functions.objects.ObjectStore` over one ``google.cloud.storage.Client``."""

    def __init__(self, client: storage.Client) -> None:
        self._client = client

    def stat(self, bucket: str, name: str, generation: int | None = None) -> ObjectInfo | None:
        with _mapped_errors(f"gs://{bucket}/{name}"):
            blob = self._client.bucket(bucket).get_blob(
                name, generation=generation, timeout=TIMEOUT_SECONDS, retry=DEFAULT_RETRY
            )
        return None if blob is None else _info(blob)

    def read(self, bucket: str, name: str) -> tuple[bytes, ObjectInfo] | None:
        blob = self._client.bucket(bucket).blob(name)
        try:
            with _mapped_errors(f"gs://{bucket}/{name}"):
                data = blob.download_as_bytes(timeout=TIMEOUT_SECONDS, retry=DEFAULT_RETRY)
        except ObjectNotFound:
            return None
        return data, _info(blob)

    def download(
        self, bucket: str, name: str, generation: int | None, target: BinaryIO
    ) -> ObjectInfo:
        blob = self._client.bucket(bucket).blob(name, generation=generation)
        with (
            _mapped_errors(f"gs://{bucket}/{name}#{generation}"),
            # The stored bytes as they are: an object uploaded with Content-Encoding: gzip is
            # not decompressed on the way (functions.compression looks at the bytes).
            blob.open(
                "rb", chunk_size=DOWNLOAD_CHUNK_BYTES, timeout=TIMEOUT_SECONDS, raw_download=True
            ) as reader,
        ):
            while chunk := reader.read(CHUNK_BYTES):
                target.write(chunk)
        target.flush()
        return _info(blob)

    def write(
        self,
        bucket: str,
        name: str,
        source: bytes | BinaryIO,
        *,
        if_generation_match: int | None,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        blob = self._client.bucket(bucket).blob(name)
        if metadata:
            blob.metadata = metadata
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        with _mapped_errors(f"gs://{bucket}/{name}"):
            # The size lets the client choose a single-request upload up to 8 MiB and a
            # resumable one above; both carry the precondition to Cloud Storage.
            blob.upload_from_file(
                stream,
                size=size,
                rewind=True,
                content_type=content_type,
                if_generation_match=if_generation_match,
                timeout=TIMEOUT_SECONDS,
                retry=DEFAULT_RETRY,
            )
        return _info(blob)

    def copy(
        self, bucket: str, name: str, generation: int, destination_bucket: str, destination: str
    ) -> ObjectInfo:
        source_bucket = self._client.bucket(bucket)
        source = source_bucket.blob(name, generation=generation)
        target = f"gs://{destination_bucket}/{destination}"
        with _mapped_errors(f"gs://{bucket}/{name}#{generation} -> {target}"):
            copied = source_bucket.copy_blob(
                source,
                self._client.bucket(destination_bucket),
                destination,
                source_generation=generation,
                if_generation_match=0,
                timeout=TIMEOUT_SECONDS,
                retry=DEFAULT_RETRY,
            )
        return _info(copied)

    def delete(self, bucket: str, name: str, if_generation_match: int | None = None) -> bool:
        try:
            with _mapped_errors(f"gs://{bucket}/{name}"):
                self._client.bucket(bucket).delete_blob(
                    name,
                    if_generation_match=if_generation_match,
                    timeout=TIMEOUT_SECONDS,
                    retry=DEFAULT_RETRY,
                )
        except ObjectNotFound:
            return False
        return True

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        with _mapped_errors(f"gs://{bucket}/{prefix}*"):
            blobs = self._client.list_blobs(bucket, prefix=prefix, timeout=TIMEOUT_SECONDS)
            return [_info(blob) for blob in blobs]
