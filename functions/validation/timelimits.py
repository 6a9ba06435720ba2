"""The time limits of one validation, from its options: the same numbers and the same words
for every path (the reference, the fast path, the columnar path), computed in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from functions.validation.options import ValidationOptions
from functions.validation.timeparse import format_seconds

OLD_EVENT_DAYS = 365
MOVED_EVENT_DAYS = 360
ANALYTICS_DAYS = 7
#: The old-event cut-off moves once per UTC day, see old_event_limit.
_DAY = 86400.0


def old_event_limit(now: float) -> float:
    """Events strictly before this Unix time are treated as "older than 365 days".

    It is the start of the UTC day of ``now`` minus 364 days, so it always covers every event
    older than 365 days, plus less than one day more. Why not exactly ``now - 365 days``: a
    cut-off that slides with ``now`` would keep catching new events each time an output file
    is validated again, so the function would never see its own output as unchanged. Fixed for
    a whole UTC day, the cut-off makes a second validation on the same day byte-identical (one
    crossing midnight settles after one more rewrite). The margin is also prudent: Leanplum
    applies its 365-day rule when the job runs, which can be hours after validation.
    """
    return (now // _DAY) * _DAY - (OLD_EVENT_DAYS - 1) * _DAY


@dataclass(frozen=True)
class TimeLimits:
    """Unix times a row's time is compared with, the time old events are moved to, and the
    reasons given when a time is out of bounds."""

    now: float
    #: Before this: older than 365 days (``old_event_limit``).
    old: float
    #: Before this: not shown on Leanplum's Analytics page.
    analytics: float
    #: After this: too far in the future (MAX_FUTURE_SECONDS).
    future: float
    #: Before this: a placeholder, not a real event (MIN_EVENT_TIME).
    floor: float
    #: Where old events are moved (old_event_policy=move), and its canonical text.
    moved: float
    moved_text: str
    floor_reason: str
    future_reason: str

    @classmethod
    def of(cls, options: ValidationOptions) -> TimeLimits:
        """The limits of a run with these options (at ``options.now``)."""
        now = options.now.timestamp()
        moved = now - timedelta(days=MOVED_EVENT_DAYS).total_seconds()
        return cls(
            now=now,
            old=old_event_limit(now),
            analytics=now - timedelta(days=ANALYTICS_DAYS).total_seconds(),
            future=now + options.max_future_seconds,
            floor=options.min_event_time.timestamp(),
            moved=moved,
            moved_text=format_seconds(moved),
            floor_reason=(
                f"time is before {options.min_event_time:%Y-%m-%d} (MIN_EVENT_TIME): a"
                " placeholder such as 0 or a 1900 date, not the time of a real event"
            ),
            future_reason=f"event is more than {options.max_future_seconds} seconds in the future",
        )
