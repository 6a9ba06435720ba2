"""The outcome of one validation run, as the JSON report a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.validation.timeparse import FORMATS

#: At most this many individual rejections are listed; counts by reason stay complete.
MAX_LISTED_REJECTIONS = 1000
#: At most this many event names are listed in the campaigns warning.
MAX_LISTED_EVENT_NAMES = 100


@dataclass
class ValidationReport:
    """Counts, reasons and warnings of one run; ``to_dict`` is the report's JSON shape.

    Every data row is counted once: ``rows_total = rows_written + rows_rejected +
    rows_duplicate_dropped``. Duplicates are found while rows are grouped for output, so
    they are counted only when the file is accepted (a refused file is never grouped).
    ``time_formats`` counts the rows whose time was read in each format (see ``timeparse``),
    rows later rejected for another reason or dropped as duplicates included.
    """

    accepted: bool = False
    refusal_reason: str | None = None
    rows_total: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_duplicate_dropped: int = 0
    rows_time_clamped: int = 0
    rows_hidden_from_analytics: int = 0
    time_formats: dict[str, int] = field(default_factory=dict)
    rejections: list[dict[str, object]] = field(default_factory=list)
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    column_mapping: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    event_names: list[str] = field(default_factory=list)
    event_names_total: int = 0
    parameter_names_total: int = 0
    user_lookups_before: int = 0
    user_lookups_after: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def reject(self, row: int, column: str, reason: str) -> None:
        """Record one rejected row: listed while under the cap, always counted."""
        self.rows_rejected += 1
        self.rejections_by_reason[reason] = self.rejections_by_reason.get(reason, 0) + 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append({"row": row, "column": column, "reason": reason})

    def count_time_formats(self, counts: dict[str, int]) -> None:
        """Add one chunk's rows per time format."""
        formats = self.time_formats
        for name, count in counts.items():
            formats[name] = formats.get(name, 0) + count

    def to_dict(self) -> dict[str, object]:
        """The JSON report; keys are stable so tools and people can rely on them."""
        return {
            "accepted": self.accepted,
            "refusal_reason": self.refusal_reason,
            "rows_total": self.rows_total,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate_dropped": self.rows_duplicate_dropped,
            "rows_time_clamped": self.rows_time_clamped,
            "rows_hidden_from_analytics": self.rows_hidden_from_analytics,
            "time_formats": {
                name: self.time_formats[name] for name in FORMATS if name in self.time_formats
            },
            "rejections": list(self.rejections),
            "rejections_listed": len(self.rejections),
            "rejections_by_reason": dict(sorted(self.rejections_by_reason.items())),
            "column_mapping": dict(self.column_mapping),
            "warnings": list(self.warnings),
            "event_names": list(self.event_names),
            "event_names_total": self.event_names_total,
            "parameter_names_total": self.parameter_names_total,
            "user_lookups_before": self.user_lookups_before,
            "user_lookups_after": self.user_lookups_after,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
        }
