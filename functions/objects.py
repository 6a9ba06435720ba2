"""The object store the importer needs, as a small protocol, and writes that know their own.

Why a protocol: every guarantee of the importer is a generation-conditioned read or write. The
Cloud Storage implementation (:mod:`functions.gcs`) is what runs in the cloud and against the
emulator; an in-memory implementation that honours generations exactly as Cloud Storage does
(``tests/unit/memory_store.py``) lets unit tests play every race in milliseconds and inject the
faults no emulator produces on demand.

Why write tokens: the storage client retries a conditional write on a transient error. When the
first attempt succeeded but its answer was lost, the retry meets its own write and gets HTTP
412, which would read as "someone else wrote first". :func:`write_once` puts a fresh token in
the object's metadata and, after a 412, looks at the live object: if it carries our token, the
write was ours and succeeded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from functions.errors import ImporterError, StaleGenerationError
from functions.logs import warning

#: Metadata key holding the token of the write that made an object.
WRITE_TOKEN_KEY = "leanplum-importer-write-token"


class ObjectNotFound(ImporterError):
    """The object (or the pinned generation) does not exist."""


class AccessDenied(ImporterError):
    """HTTP 403: the function's grants (``functions/access.py``, ``infra/iam.tf``) do not cover
    this object."""


class PreconditionFailed(StaleGenerationError):
    """HTTP 412: the object's live generation is not the one the write expected."""


class StorageUnavailable(ImporterError):
    """The store did not answer after its own retries (HTTP 5xx, 429, timeouts)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What the importer reads of an object's metadata."""

    bucket: str
    name: str
    generation: int
    size: int = 0
    md5_hash: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    time_created: str | None = None


class ObjectStore(Protocol):
    """The operations the importer makes on buckets. Generations are Cloud Storage's:
    ``if_generation_match=0`` means "only if absent", ``None`` means unconditional."""

    def stat(self, bucket: str, name: str, generation: int | None = None) -> ObjectInfo | None:
        """The live (or pinned) object's metadata, or ``None`` when absent."""
        ...

    def read(self, bucket: str, name: str) -> tuple[bytes, ObjectInfo] | None:
        """A small object's bytes and metadata, or ``None`` when absent."""
        ...

    def download(
        self, bucket: str, name: str, generation: int | None, target: BinaryIO
    ) -> ObjectInfo:
        """Stream one pinned generation (``None``: the live one) into ``target``.

        :raises ObjectNotFound: the generation no longer exists.
        """
        ...

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
        """Create or replace ``name``; returns the new object's metadata.

        :raises PreconditionFailed: the live generation is not ``if_generation_match``.
        """
        ...

    def copy(
        self, bucket: str, name: str, generation: int, destination_bucket: str, destination: str
    ) -> ObjectInfo:
        """Copy one pinned generation to ``destination`` only if that does not exist yet.

        :raises ObjectNotFound: the source generation no longer exists.
        :raises PreconditionFailed: ``destination`` exists already.
        """
        ...

    def delete(self, bucket: str, name: str, if_generation_match: int | None = None) -> bool:
        """Delete the live object; False when there was none.

        :raises PreconditionFailed: the live generation is not ``if_generation_match``.
        """
        ...

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        """The live objects under ``prefix``, by name."""
        ...


def gs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/name`` as ``(bucket, name)``."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def write_once(
    store: ObjectStore,
    bucket: str,
    name: str,
    source: bytes | BinaryIO,
    *,
    if_generation_match: int | None,
    content_type: str,
    metadata: dict[str, str] | None = None,
) -> ObjectInfo:
    """A write that recognises itself: a 412 caused by its own lost answer is a success.

    :raises StaleGenerationError: another writer changed the object first.
    """
    token = uuid.uuid4().hex
    try:
        return store.write(
            bucket,
            name,
            source,
            if_generation_match=if_generation_match,
            content_type=content_type,
            metadata={**(metadata or {}), WRITE_TOKEN_KEY: token},
        )
    except PreconditionFailed as exc:
        live = store.stat(bucket, name)
        if live is not None and live.metadata.get(WRITE_TOKEN_KEY) == token:
            warning(
                "A write's answer was lost; its retry met the write itself: success",
                step="storage",
                bucket=bucket,
                object=name,
                generation=str(live.generation),
            )
            return live
        raise StaleGenerationError(
            f"gs://{bucket}/{name} is no longer at generation {if_generation_match}"
        ) from exc
