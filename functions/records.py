"""The import record: one small JSON object per uploaded file version, the importer's memory.

Why it exists: Leanplum's ``track`` has no idempotency key, and GCS events arrive at least once,
sometimes concurrently. Every step that must happen once (claiming the file, starting the job,
publishing the result) is a compare-and-swap on this record: a write with
``if_generation_match`` set to the record generation we read. Of two concurrent writers, one
wins and the other gets HTTP 412 and re-reads. The record lives in the same bucket under
:data:`~functions.config.RECORDS_PREFIX`, so no other database is needed.

States::

    RECEIVED -> VALIDATED -> JOB_STARTING -> JOB_STARTED -> FINISHED | FAILED | TIMED_OUT
        \\-> REJECTED | DUPLICATE | SUPERSEDED          (terminal, no job)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions import gcs
from functions.config import RECORDS_PREFIX
from functions.errors import StaleGenerationError

TERMINAL_STATES = frozenset(
    {"FINISHED", "FAILED", "TIMED_OUT", "REJECTED", "DUPLICATE", "SUPERSEDED"}
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_name(object_name: str, generation: int) -> str:
    return f"{RECORDS_PREFIX}{object_name}/{generation}.json"


@dataclass
class ImportRecord:
    """The persisted state of one file version. ``record_generation`` is not persisted."""

    bucket: str
    object: str
    generation: int
    state: str = "RECEIVED"
    uploaded_at: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    history: list[dict[str, str]] = field(default_factory=list)
    lease_until: float = 0.0
    attempts: int = 1
    last_error: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    output_sha256: str | None = None
    output_md5: str | None = None
    output_generation: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    job_started_at: str | None = None
    task_name: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    uris: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    result: dict[str, Any] | None = None
    published: bool = False
    record_generation: int = field(default=0, compare=False)

    @property
    def name(self) -> str:
        return record_name(self.object, self.generation)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("record_generation")
        return json.dumps(data, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, record_generation: int) -> ImportRecord:
        values = json.loads(data)
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**known, record_generation=record_generation)


def load(bucket: str, object_name: str, generation: int) -> ImportRecord | None:
    """The record of one file version, or ``None`` when there is none yet."""
    found = gcs.read_bytes(bucket, record_name(object_name, generation))
    if found is None:
        return None
    data, record_generation = found
    return ImportRecord.from_json(data, record_generation)


def create(record: ImportRecord) -> bool:
    """Claim a file version: write its first record only if none exists (``if_generation_match=0``).

    Returns ``False`` when another delivery of the same event claimed it first.
    """
    record.history = [{"state": record.state, "at": record.created_at}]
    try:
        record.record_generation = gcs.upload_bytes(
            record.bucket,
            record.name,
            record.to_json(),
            content_type="application/json",
            if_generation_match=0,
        )
    except StaleGenerationError:
        return False
    return True


def save(record: ImportRecord, state: str | None = None) -> None:
    """Write ``record`` over the generation it was read at; move it to ``state`` if given.

    :raises StaleGenerationError: someone else changed the record since it was read; the caller
        must re-read and decide again.
    """
    if state is not None and state != record.state:
        record.state = state
        record.history.append({"state": state, "at": now_iso()})
    record.updated_at = now_iso()
    record.record_generation = gcs.upload_bytes(
        record.bucket,
        record.name,
        record.to_json(),
        content_type="application/json",
        if_generation_match=record.record_generation,
    )
