"""Read one object from Cloud Storage (or the emulator named by STORAGE_EMULATOR_HOST).

Two steps, as a job-based import does them: :func:`stat_object` when ``multi`` is called
(does the object exist, how large, which generation: one small metadata request, so the reply
is quick whatever the file's size), then :func:`download` of that very generation when the
job runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "local"
DOWNLOAD_TIMEOUT_SECONDS = 120.0


class ObjectMissing(LookupError):
    """The bucket or the object (or the generation read) does not exist."""


class ObjectTooLarge(ValueError):
    """The object is bigger than the allowed size."""


class StorageUnavailable(RuntimeError):
    """Storage answered with an unexpected error or could not be reached."""


@dataclass(frozen=True)
class ObjectInfo:
    generation: int | None
    size: int


def _client() -> storage.Client:
    # A new client per call: it is cheap and honours STORAGE_EMULATOR_HOST as set right now.
    if os.environ.get(EMULATOR_ENV):
        return storage.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


def _too_large(bucket: str, name: str, size: int, max_bytes: int) -> ObjectTooLarge:
    return ObjectTooLarge(
        f"File gs://{bucket}/{name} is {size} bytes; at most {max_bytes} bytes allowed"
    )


def stat_object(bucket: str, name: str, *, max_bytes: int, timeout: float = 30.0) -> ObjectInfo:
    """The object's current generation and size; refuses objects larger than ``max_bytes``."""
    where = f"gs://{bucket}/{name}"
    try:
        blob = _client().bucket(bucket).get_blob(name, timeout=timeout)
    except gexc.NotFound:
        raise ObjectMissing(f"File not found: {where}") from None
    except (gexc.GoogleAPIError, OSError) as exc:  # OSError: connection refused, reset...
        raise StorageUnavailable(f"Could not read {where}: {exc}") from None
    if blob is None:
        raise ObjectMissing(f"File not found: {where}")
    size = int(blob.size or 0)
    if size > max_bytes:
        raise _too_large(bucket, name, size, max_bytes)
    generation = int(blob.generation) if blob.generation is not None else None
    return ObjectInfo(generation=generation, size=size)


def download(
    bucket: str,
    name: str,
    generation: int | None,
    *,
    max_bytes: int,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> bytes:
    """The bytes of ``generation`` (the one seen by :func:`stat_object`), at most ``max_bytes``."""
    where = f"gs://{bucket}/{name}"
    try:
        blob = _client().bucket(bucket).blob(name, generation=generation)
        data = bytes(blob.download_as_bytes(timeout=timeout))
    except gexc.NotFound:
        raise ObjectMissing(
            f"File not found: {where} (generation {generation}) was deleted or replaced"
            " after the job was created"
        ) from None
    except (gexc.GoogleAPIError, OSError) as exc:
        raise StorageUnavailable(f"Could not read {where}: {exc}") from None
    if len(data) > max_bytes:
        raise _too_large(bucket, name, len(data), max_bytes)
    return data
