"""Settings of one validation run, chosen by the caller (ingest function or command line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

#: Times before this are placeholders (0, 1900), not events: rejected by default.
DEFAULT_MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

OLD_EVENT_POLICIES = ("move", "reject", "keep")


@dataclass(frozen=True)
class ValidationOptions:
    """How to judge a file.

    ``now`` is the import time: every age rule (365-day rewrite, 7-day analytics window,
    future events) is measured from it, so a fixed ``now`` makes a run reproducible.
    """

    now: datetime
    old_event_policy: str = "move"
    max_future_seconds: int = 600
    max_rejected_fraction: float = 0.10
    naive_timezone: str = "UTC"
    temp_dir: str | None = None
    min_event_time: datetime = DEFAULT_MIN_EVENT_TIME

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
