"""Settings of one validation run, chosen by the caller (ingest function or command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.validation.columns import TRACK_ARGUMENTS
from functions.validation.timeparse import zone_for

#: Times before this are placeholders (0, 1900), not events: rejected by default.
DEFAULT_MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

OLD_EVENT_POLICIES = ("move", "reject", "keep")
DUPLICATE_ROW_POLICIES = ("drop", "keep")


@dataclass(frozen=True)
class ValidationOptions:
    """How to judge a file.

    ``now`` is the import time: every age rule (365-day rewrite, 7-day analytics window,
    future events) is measured from it, so a fixed ``now`` makes a run reproducible.

    ``naive_timezone``: the IANA zone (``UTC``, ``Europe/Berlin``) that times written without
    any zone are read in; None (the default) rejects such rows, because a wall-clock time
    alone names no instant and guessing UTC would shift every event of a file written in
    another zone by hours without anyone noticing.

    ``duplicate_rows``: ``drop`` (default) keeps one row of each set of rows that are
    identical after normalisation (same user, event, time and parameters), since an
    overlapping re-export would otherwise count every event twice in Leanplum (``track`` has
    no idempotency key); ``keep`` sends them all.

    ``column_map``: track argument -> source column, for exports whose column names no alias
    covers (``{"userId": "user_pseudo_id"}``); a named column missing from a file refuses it.
    ``drop_columns``: columns left out of the output, e.g. warehouse columns that would
    otherwise become some of Leanplum's 200 parameter names per app.

    ``workers``: worker processes for the parallel path (``parallel``); None (default) uses
    one per usable vCPU when there are several and the input is big, 0 or 1 never. The
    output, rejected rows and report are the same either way.
    """

    now: datetime
    old_event_policy: str = "move"
    max_future_seconds: int = 600
    max_rejected_fraction: float = 0.10
    naive_timezone: str | None = None
    temp_dir: str | None = None
    min_event_time: datetime = DEFAULT_MIN_EVENT_TIME
    duplicate_rows: str = "drop"
    column_map: dict[str, str] = field(default_factory=dict)
    drop_columns: frozenset[str] = frozenset()
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("ValidationOptions.now must be timezone-aware")
        if self.old_event_policy not in OLD_EVENT_POLICIES:
            raise ValueError(
                f"old_event_policy must be one of {', '.join(OLD_EVENT_POLICIES)},"
                f" got {self.old_event_policy!r}"
            )
        if self.max_future_seconds < 0:
            raise ValueError("max_future_seconds must be >= 0")
        if self.min_event_time.tzinfo is None or self.min_event_time.timestamp() < 0:
            raise ValueError("min_event_time must be timezone-aware, at or after 1970-01-01")
        if not 0.0 <= self.max_rejected_fraction <= 1.0:
            raise ValueError("max_rejected_fraction must be between 0 and 1")
        zone_for(self.naive_timezone)
        if self.duplicate_rows not in DUPLICATE_ROW_POLICIES:
            raise ValueError(
                f"duplicate_rows must be one of {', '.join(DUPLICATE_ROW_POLICIES)},"
                f" got {self.duplicate_rows!r}"
            )
        _check_columns(self.column_map, self.drop_columns)
        if self.workers is not None and self.workers < 0:
            raise ValueError("workers must be >= 0")


def parse_column_map(text: str) -> dict[str, str]:
    """``"userId=user_pseudo_id,time=event_timestamp"`` (the COLUMN_MAP setting) as a dict.

    One parser for the setting and the command line's ``--map``, so both say the same thing
    about the same mistake. Empty text is an empty map; raises ValueError naming the item.
    """
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        argument, sep, column = item.partition("=")
        if not sep or not argument.strip() or not column.strip():
            raise ValueError(f"column map: expected ARG=COLUMN, got {item!r}")
        if argument.strip() in mapping:
            raise ValueError(f"column map: {argument.strip()!r} is mapped twice")
        mapping[argument.strip()] = column.strip()
    return mapping


def parse_drop_columns(text: str) -> frozenset[str]:
    """``"event_date,ga_session_number"`` (the DROP_COLUMNS setting) as a set of names."""
    return frozenset(filter(None, (part.strip() for part in text.split(","))))


def _check_columns(column_map: dict[str, str], drop_columns: frozenset[str]) -> None:
    """Mistakes in the column settings are the caller's: say so before any file is read."""
    unknown = sorted(set(column_map) - set(TRACK_ARGUMENTS))
    if unknown:
        raise ValueError(
            f"column_map: {', '.join(map(repr, unknown))} is not a track argument"
            f" (one of {', '.join(TRACK_ARGUMENTS)})"
        )
    sources = list(column_map.values())
    if any(not source.strip() for source in sources):
        raise ValueError("column_map: a source column name is empty")
    shared = sorted({source for source in sources if sources.count(source) > 1})
    if shared:
        raise ValueError(f"column_map: column(s) {', '.join(map(repr, shared))} mapped twice")
    both = sorted(drop_columns & set(sources))
    if both:
        raise ValueError(
            f"column(s) {', '.join(map(repr, both))} both mapped (column_map) and dropped"
            " (drop_columns)"
        )
