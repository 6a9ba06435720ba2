"""Read one object from Cloud Storage (or the emulator named by STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "local"


class ObjectMissing(LookupError):
    """The bucket or the object does not exist."""


class ObjectTooLarge(ValueError):
    """The object is bigger than the allowed size."""


class StorageUnavailable(RuntimeError):
    """Storage answered with an unexpected error or could not be reached."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    generation: int | None
    size: int


def _client() -> storage.Client:
    # A new client per read: it is cheap and honours STORAGE_EMULATOR_HOST as set right now.
    if os.environ.get(EMULATOR_ENV):
        return storage.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


def read_object(bucket: str, name: str, *, max_bytes: int, timeout: float = 30.0) -> StoredObject:
    """Download the object's current generation, refusing objects larger than ``max_bytes``."""
    try:
        blob = _client().bucket(bucket).get_blob(name, timeout=timeout)
        if blob is None:
            raise ObjectMissing(f"File not found: gs://{bucket}/{name}")
        size = int(blob.size or 0)
        if size > max_bytes:
            raise ObjectTooLarge(
                f"File gs://{bucket}/{name} is {size} bytes; at most {max_bytes} bytes allowed"
            )
        generation = int(blob.generation) if blob.generation is not None else None
        data = blob.download_as_bytes(if_generation_match=generation, timeout=timeout)
    except gexc.NotFound:
        raise ObjectMissing(f"File not found: gs://{bucket}/{name}") from None
    except gexc.GoogleAPIError as exc:
        raise StorageUnavailable(f"Could not read gs://{bucket}/{name}: {exc}") from None
    except OSError as exc:  # connection refused, reset...
        raise StorageUnavailable(f"Could not read gs://{bucket}/{name}: {exc}") from None
    if len(data) > max_bytes:
        raise ObjectTooLarge(f"File gs://{bucket}/{name} is larger than {max_bytes} bytes")
    return StoredObject(data=data, generation=generation, size=len(data))
