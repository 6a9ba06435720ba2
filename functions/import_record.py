"""The import record, typed: one small JSON object per uploaded file version.

Why typed: parts, the validation summary, timings and URIs used to travel as dicts read with
``.get(key, 0)``, so a misspelt key read as zero. Each is a dataclass with explicit fields here,
serialised to and from the JSON shape the records in buckets already have: a record written by an
earlier version of the importer (an import still running during a deployment) loads unchanged,
and unknown keys written by a later version are kept, not dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from functions.lifecycle import State


def now_iso() -> str:
    """UTC now as ISO 8601 with milliseconds and ``Z`` (the records' and messages' format)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in values.items() if key in names}


@dataclass
class Part:
    """One file Leanplum reads: the normalised object itself, or one split part."""

    file: str
    rows: int
    bytes: int
    uri: str
    job_id: str | None = None
    #: The bucket holding ``file`` (the state bucket); ``None`` in records written before the
    #: state bucket existed, where it is the upload's bucket.
    bucket: str | None = None
    #: The job slot this part's job holds (``<number>#<slot object generation>``), if any.
    slot: str | None = None
    #: The part's job was seen ended (its slot is no longer needed).
    ended: bool = False
    #: ``gs://`` URI of the copy in ``LEANPLUM_BUCKET`` that ``multi`` names, when one is used.
    leanplum_copy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "rows": self.rows, "bytes": self.bytes}
        data["uri"] = self.uri
        if self.job_id is not None:
            data["job_id"] = self.job_id
        if self.bucket is not None:
            data["bucket"] = self.bucket
        # Written only once used, so records keep the shape earlier importers read.
        if self.slot is not None:
            data["slot"] = self.slot
        if self.ended:
            data["ended"] = True
        if self.leanplum_copy is not None:
            data["leanplum_copy"] = self.leanplum_copy
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Part:
        return cls(
            file=str(data["file"]),
            rows=int(data.get("rows") or 0),
            bytes=int(data.get("bytes") or 0),
            uri=str(data.get("uri") or ""),
            job_id=str(data["job_id"]) if data.get("job_id") else None,
            bucket=str(data["bucket"]) if data.get("bucket") else None,
            slot=str(data["slot"]) if data.get("slot") else None,
            ended=bool(data.get("ended", False)),
            leanplum_copy=str(data["leanplum_copy"]) if data.get("leanplum_copy") else None,
        )


@dataclass
class ValidationSummary:
    """The counts of the validation report that the lifecycle and the result message use.

    The whole report (rejections, warnings, column mapping) is kept in ``full`` and written to
    ``report.json`` as it is; the counts are read from it once, here.
    """

    accepted: bool = False
    refusal_reason: str | None = None
    rows_total: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_time_clamped: int = 0
    rows_hidden_from_analytics: int = 0
    rows_duplicate_dropped: int = 0
    full: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> ValidationSummary:
        def count(key: str) -> int:
            return int(report.get(key) or 0)

        return cls(
            accepted=bool(report.get("accepted", False)),
            refusal_reason=report.get("refusal_reason"),
            rows_total=count("rows_total"),
            rows_written=count("rows_written"),
            rows_rejected=count("rows_rejected"),
            rows_time_clamped=count("rows_time_clamped"),
            rows_hidden_from_analytics=count("rows_hidden_from_analytics"),
            rows_duplicate_dropped=count("rows_duplicate_dropped"),
            full=dict(report),
        )

    def to_report(self) -> dict[str, Any]:
        report = dict(self.full)
        report.update(
            accepted=self.accepted,
            refusal_reason=self.refusal_reason,
            rows_total=self.rows_total,
            rows_written=self.rows_written,
            rows_rejected=self.rows_rejected,
            rows_time_clamped=self.rows_time_clamped,
            rows_hidden_from_analytics=self.rows_hidden_from_analytics,
        )
        if self.rows_duplicate_dropped or "rows_duplicate_dropped" in report:
            report["rows_duplicate_dropped"] = self.rows_duplicate_dropped
        return report


@dataclass
class Uris:
    """Where a person finds each copy of the file; ``None`` until it exists."""

    original: str | None = None
    report: str | None = None
    rejected_rows: str | None = None
    normalized: str | None = None
    failed_rows: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Timings:
    """When each step happened (ISO 8601, UTC). Stored as top-level keys of the record."""

    received_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    uploaded_at: str | None = None
    job_started_at: str | None = None
    #: When the file first found every job slot taken (``None``: it never waited).
    queued_at: str | None = None


@dataclass
class Transition:
    """One entry of the record's timeline."""

    state: State
    at: str


# Keys of the record's JSON that map onto typed fields rather than plain attributes.
_TIMING_KEYS = {
    "created_at": "received_at",
    "updated_at": "updated_at",
    "uploaded_at": "uploaded_at",
    "job_started_at": "job_started_at",
    "queued_at": "queued_at",
}


@dataclass
class ImportRecord:
    """The persisted state of one file version.

    ``record_generation`` (the record object's own generation, for compare-and-swap) and
    ``stored_state`` (the state last read or written, against which a save's move is checked)
    are not persisted.
    """

    bucket: str
    object: str
    generation: int
    state: State = State.RECEIVED
    timings: Timings = field(default_factory=Timings)
    history: list[Transition] = field(default_factory=list)
    lease_until: float = 0.0
    attempts: int = 1
    last_error: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    output_sha256: str | None = None
    output_md5: str | None = None
    output_generation: int | None = None
    parts: list[Part] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    task_name: str | None = None
    #: Why a later part's job could not start after earlier parts' jobs did (those are polled
    #: and reported; the file still ends FAILED).
    start_error: str | None = None
    #: Poll attempts seen (counted here, not read from a header a caller could set).
    poll_attempts: int = 0
    #: The Leanplum app's name (see :mod:`functions.leanplum_apps`); ``None``: the default app.
    app: str | None = None
    #: That app's Leanplum id (not a secret; the result names it). ``None`` for a dry run.
    app_id: str | None = None
    #: The copies in ``LEANPLUM_BUCKET`` were deleted after the jobs ended.
    leanplum_copies_deleted: bool = False
    validation: ValidationSummary = field(default_factory=ValidationSummary)
    uris: Uris = field(default_factory=Uris)
    reason: str | None = None
    result: dict[str, Any] | None = None
    published: bool = False
    unknown: dict[str, Any] = field(default_factory=dict, compare=False)
    record_generation: int = field(default=0, compare=False)
    stored_state: State | None = field(default=None, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def reached(self, state: State) -> bool:
        """Whether the record's timeline ever entered ``state``."""
        return any(t.state == state for t in self.history)

    @property
    def leanplum_copies(self) -> list[str]:
        """Where the copies in ``LEANPLUM_BUCKET`` are (or were)."""
        return [part.leanplum_copy for part in self.parts if part.leanplum_copy]

    @property
    def rows_sent(self) -> int:
        """Rows of the parts whose job Leanplum started (a part without a job sent none)."""
        return sum(part.rows for part in self.parts if part.job_id)

    @property
    def fields(self) -> dict[str, str]:
        """The log fields naming this file version."""
        return {"bucket": self.bucket, "object": self.object, "generation": str(self.generation)}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.unknown)
        data.update(
            bucket=self.bucket,
            object=self.object,
            generation=self.generation,
            state=self.state.value,
            created_at=self.timings.received_at,
            updated_at=self.timings.updated_at,
            uploaded_at=self.timings.uploaded_at,
            job_started_at=self.timings.job_started_at,
            history=[{"state": t.state.value, "at": t.at} for t in self.history],
            lease_until=self.lease_until,
            attempts=self.attempts,
            last_error=self.last_error,
            sha256=self.sha256,
            size_bytes=self.size_bytes,
            output_sha256=self.output_sha256,
            output_md5=self.output_md5,
            output_generation=self.output_generation,
            parts=[part.to_dict() for part in self.parts],
            job_ids=list(self.job_ids),
            task_name=self.task_name,
            report={} if self.validation == ValidationSummary() else self.validation.to_report(),
            uris=self.uris.to_dict(),
            reason=self.reason,
            result=self.result,
            published=self.published,
        )
        # Written only once used, so records keep the shape earlier importers read.
        if self.start_error is not None:
            data["start_error"] = self.start_error
        if self.poll_attempts:
            data["poll_attempts"] = self.poll_attempts
        if self.app is not None:
            data["app"] = self.app
            data["app_id"] = self.app_id
        if self.leanplum_copies_deleted:
            data["leanplum_copies_deleted"] = True
        if self.timings.queued_at is not None:
            data["queued_at"] = self.timings.queued_at
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1).encode()

    @classmethod
    def from_dict(cls, values: dict[str, Any], record_generation: int = 0) -> ImportRecord:
        plain = {
            "bucket",
            "object",
            "generation",
            "lease_until",
            "attempts",
            "last_error",
            "sha256",
            "size_bytes",
            "output_sha256",
            "output_md5",
            "output_generation",
            "job_ids",
            "task_name",
            "reason",
            "result",
            "published",
            "start_error",
            "poll_attempts",
            "app",
            "app_id",
            "leanplum_copies_deleted",
        }
        typed = {"state", "history", "parts", "report", "uris", *_TIMING_KEYS}
        state = State(values.get("state", State.RECEIVED))
        timings = Timings(**{_TIMING_KEYS[k]: v for k, v in values.items() if k in _TIMING_KEYS})
        record = cls(
            **{key: value for key, value in values.items() if key in plain},
            state=state,
            timings=timings,
            history=[
                Transition(State(t["state"]), str(t["at"])) for t in values.get("history", [])
            ],
            parts=[Part.from_dict(part) for part in values.get("parts") or []],
            validation=ValidationSummary.from_report(values.get("report") or {}),
            uris=Uris(**_known(Uris, values.get("uris") or {})),
            unknown={k: v for k, v in values.items() if k not in plain | typed},
            record_generation=record_generation,
            stored_state=state,
        )
        record.generation = int(record.generation)
        return record

    @classmethod
    def from_json(cls, data: bytes, record_generation: int) -> ImportRecord:
        return cls.from_dict(json.loads(data), record_generation)
