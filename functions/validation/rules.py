"""The row rules, applied a chunk of rows at a time.

Why chunks and columns: a Python loop over every cell is several times slower than the CSV
parser itself. Each rule therefore looks at a whole column with C-level tools first (``map``,
``set``, ``min``/``max``) and only walks row by row when that quick look finds a problem. Most
columns of most chunks are settled without a Python-level step per row.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from itertools import compress
from typing import NamedTuple

import pycountry

from functions.validation.billing import LookupCounter
from functions.validation.columns import ColumnPlan
from functions.validation.names import NameChecker
from functions.validation.options import ValidationOptions
from functions.validation.reading import Chunk
from functions.validation.rejected import RejectedWriter
from functions.validation.report import ValidationReport
from functions.validation.sorting import RECORD_OVERHEAD, buckets_of
from functions.validation.timelimits import OLD_EVENT_DAYS, TimeLimits
from functions.validation.timeparse import TimeParser, zone_for

MAX_ID_LENGTH = 400
MAX_PARAMETERS_PER_EVENT = 50
#: Distinct event names remembered for the report; past this the list stops growing.
MAX_COLLECTED_EVENT_NAMES = 10_000
#: ISO 4217 codes from pycountry's maintained list, not a hand-typed one.
CURRENCY_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

USER_EMPTY = "userId is empty"
USER_TOO_LONG = f"userId is longer than {MAX_ID_LENGTH} characters"
USER_CONTROL = "userId contains a control character (U+0000 to U+001F or U+007F)"
#: C0 control characters and DEL: invisible, and NUL ends strings in many systems downstream.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DEVICE_TOO_LONG = f"deviceId is longer than {MAX_ID_LENGTH} characters"
VALUE_NOT_NUMBER = "value is not a number"
CURRENCY_UNKNOWN = "currencyCode is not an ISO 4217 code"
TOO_MANY_PARAMETERS = f"more than {MAX_PARAMETERS_PER_EVENT} parameters with values"
WRONG_FIELD_COUNT = "row does not have as many fields as the header"
OLD_EVENT = f"event is more than {OLD_EVENT_DAYS} days old (old_event_policy=reject)"


class Kept(NamedTuple):
    """The kept rows of a chunk as parallel lists, and their estimated memory in bytes.

    ``origins`` is each row's time as read, before an old event was moved (the very list
    ``seconds`` when none was): two old events moved to the same time stay distinct rows.
    """

    buckets: list[int]
    users: list[str]
    seconds: list[float]
    lines: list[str]
    size: int
    origins: list[float]


def _is_number(text: str) -> bool:
    """A decimal number that is finite as a double: "1e999" matches the syntax but is not."""
    return _NUMBER.fullmatch(text) is not None and math.isfinite(float(text))


def _row(columns: Sequence[Sequence[str]], index: int) -> list[str]:
    """One row of a chunk held as columns (only for the rare rows that need it)."""
    return [column[index] for column in columns]


def csv_lines(rows: Iterable[Sequence[str]]) -> list[str]:
    """``csv.writer``'s line for each row, terminator dropped, one row at a time (so a row's
    line is its own even when a field holds a line break). CRLF terminator: Python 3.11
    quotes a field holding a lone "\r" only if "\r" is in the terminator."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2])
    return lines


class ChunkChecker:
    """Applies every row rule to chunks of parsed rows, feeding the report as it goes."""

    def __init__(
        self,
        plan: ColumnPlan,
        options: ValidationOptions,
        report: ValidationReport,
        rejected: RejectedWriter,
    ) -> None:
        self._plan = plan
        self._report = report
        self._rejected = rejected
        self._names = NameChecker()
        self._parser = TimeParser(zone_for(options.naive_timezone))
        self._limits = TimeLimits.of(options)
        self._policy = options.old_event_policy
        self._sources = plan.source_indexes()
        self.rows_blank = 0
        self.rows_kept_old = 0
        self.event_names: set[str] = set()
        self.event_names_capped = False
        self.lookups_before = LookupCounter()
        self._buffer = io.StringIO()
        # "\r\n" so that fields holding a lone "\r" are quoted (Python 3.11 quotes only
        # characters of the terminator); lines are re-joined with "\n" on output.
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    @property
    def analytics_limit(self) -> float:
        """Events before this Unix time do not appear on Leanplum's Analytics page."""
        return self._limits.analytics

    @property
    def width(self) -> int:
        """Number of fields every data row must have."""
        return self._plan.width

    def check_chunk(self, chunk: Chunk, first_row: int) -> Kept:
        """Check the records of a chunk numbered from ``first_row``; return the kept rows.

        Records of another width than the header come first, in order: blank ones are
        counted, the others rejected (as the row-by-row reader always did); then the rules
        run on the kept rows as columns.
        """
        width = self._plan.width
        for offset, row in chunk.dropped:
            number = first_row + offset
            if not any(map(str.strip, row)):
                self.rows_blank += 1
            else:
                self._report.rows_total += 1
                self._report.reject(number, "", WRONG_FIELD_COUNT)
                self._rejected.write(number, "", WRONG_FIELD_COUNT, row)
        if not chunk.count:
            return Kept([], [], [], [], 0, [])
        offsets = chunk.offsets
        numbers = None if offsets is None else [first_row + offset for offset in offsets]
        columns: list[Sequence[str]] = list(chunk.columns())
        if len(columns) != width:
            raise RuntimeError(f"chunk has {len(columns)} columns, the header {width}")
        return self._check(columns, chunk.count, first_row, numbers, quoted=chunk.quoted)

    def _check(
        self,
        columns: list[Sequence[str]],
        count: int,
        first_row: int,
        numbers: list[int] | None,
        *,
        quoted: list[int] | None,
    ) -> Kept:
        """The rules on a chunk held as columns (``numbers``: row numbers when not contiguous).

        ``quoted`` lists the rows whose fields may need quoting on output; None means any
        row may. The other rows are written with a plain ``",".join``, which is exactly what
        ``csv.writer`` writes for fields without a comma, quote or line break.
        """
        bad: dict[int, tuple[str, str]] = {}
        blank: set[int] = set()
        arguments = self._plan.arguments

        users = list(map(str.strip, columns[arguments["userId"]]))
        lengths = list(map(len, users))
        if min(lengths) == 0 or max(lengths) > MAX_ID_LENGTH:
            for index, length in enumerate(lengths):
                if length == 0:
                    if any(map(str.strip, _row(columns, index))):
                        bad.setdefault(index, ("userId", USER_EMPTY))
                    else:
                        blank.add(index)
                elif length > MAX_ID_LENGTH:
                    bad.setdefault(index, ("userId", USER_TOO_LONG))
        if _CONTROL.search("".join(users)):  # one C-level scan; row by row only when found
            for index, user in enumerate(users):
                if _CONTROL.search(user):
                    bad.setdefault(index, ("userId", USER_CONTROL))

        events = columns[arguments["event"]]
        problems = {
            name: problem
            for name in set(events)
            if (problem := self._names.problem(name)) is not None
        }
        if problems:
            for index, name in enumerate(events):
                if name in problems:
                    bad.setdefault(index, ("event", "event " + problems[name]))

        times, texts, old = self._check_times(columns[arguments["time"]], bad)
        self._check_optional(columns, count, bad)

        for index in blank:
            bad.pop(index, None)
        self.rows_blank += len(blank)
        self._report.rows_total += count - len(blank)
        for index in sorted(bad):
            column, reason = bad[index]
            number = numbers[index] if numbers is not None else first_row + index
            self._report.reject(number, column, reason)
            self._rejected.write(number, column, reason, _row(columns, index))

        origins = times
        if old and self._policy == "move":
            origins = times.copy()
        for index in old:
            if index not in bad:
                if self._policy == "move":
                    times[index] = self._limits.moved
                    texts[index] = self._limits.moved_text
                    self._report.rows_time_clamped += 1
                else:
                    self.rows_kept_old += 1

        output: list[Sequence[str]] = [columns[index] for index in self._sources]
        output[0] = users
        output[2] = texts
        self._normalise_optional(output)
        mask: list[bool] | None = None
        if bad or blank:
            mask = [True] * count
            for index in bad:
                mask[index] = False
            for index in blank:
                mask[index] = False
            users = list(compress(users, mask))
            moved = origins is not times
            times = list(compress(times, mask))
            origins = list(compress(origins, mask)) if moved else times
            events = list(compress(events, mask))
        if quoted is None or len(quoted) * 8 > count:
            # Many rows may need quoting: let csv.writer write them all (same bytes).
            kept_rows: Iterable[tuple[str, ...]] = zip(*output, strict=True)
            if mask is not None:
                kept_rows = compress(kept_rows, mask)
            lines = self._format(kept_rows)
        else:
            lines = list(map(",".join, zip(*output, strict=True)))
            if quoted:
                rows = [_row(output, index) for index in quoted]
                for index, line in zip(quoted, self._format(rows), strict=True):
                    lines[index] = line
            if mask is not None:
                lines = list(compress(lines, mask))
        self._report.rows_written += len(lines)
        self._report.rows_hidden_from_analytics += len(
            list(filter(self._limits.analytics.__gt__, times))
        )
        self._collect_events(events)
        self.lookups_before.feed(users)
        return Kept(
            buckets_of(users),
            users,
            times,
            lines,
            sum(map(len, lines)) + RECORD_OVERHEAD * len(lines),
            origins,
        )

    def _check_times(
        self, cells: Sequence[str], bad: dict[int, tuple[str, str]]
    ) -> tuple[list[float], list[str], list[int]]:
        """Parse the time column; reject unparseable and future times; list old rows."""
        times, texts, failed, formats = self._parser.parse_column(cells, self._limits.now)
        self._report.count_time_formats(formats)
        for index in failed:
            bad.setdefault(index, ("time", self._parser.reason(cells[index])))
        old: list[int] = []
        # The floor is never before 1970 (ValidationOptions checks), so no time kept under
        # old_event_policy=keep can reach Leanplum as negative seconds.
        if min(times) < self._limits.floor:
            for index, seconds in enumerate(times):
                if seconds < self._limits.floor:
                    bad.setdefault(index, ("time", self._limits.floor_reason))
        if min(times) < self._limits.old:
            old = [index for index, seconds in enumerate(times) if seconds < self._limits.old]
            if self._policy == "reject":
                for index in old:
                    bad.setdefault(index, ("time", OLD_EVENT))
                old = []
        if max(times) > self._limits.future:
            for index, seconds in enumerate(times):
                if seconds > self._limits.future:
                    bad.setdefault(index, ("time", self._limits.future_reason))
        return times, texts, old

    def _check_optional(
        self,
        columns: list[Sequence[str]],
        count: int,
        bad: dict[int, tuple[str, str]],
    ) -> None:
        """value, currencyCode, deviceId, parameter names and the per-event parameter cap."""
        arguments = self._plan.arguments
        if "value" in arguments:
            cells = columns[arguments["value"]]
            wrong = {cell for cell in set(cells) if cell and not _is_number(cell.strip())}
            for index, cell in enumerate(cells):
                if cell in wrong:
                    bad.setdefault(index, ("value", VALUE_NOT_NUMBER))
        if "currencyCode" in arguments:
            cells = columns[arguments["currencyCode"]]
            codes = set(map(str.upper, map(str.strip, set(cells))))
            if not codes.issubset(CURRENCY_CODES | {""}):
                for index, cell in enumerate(cells):
                    code = cell.strip().upper()
                    if code and code not in CURRENCY_CODES:
                        bad.setdefault(index, ("currencyCode", CURRENCY_UNKNOWN))
        if "deviceId" in arguments:
            cells = columns[arguments["deviceId"]]
            if max(map(len, cells)) > MAX_ID_LENGTH:
                for index, cell in enumerate(cells):
                    if len(cell) > MAX_ID_LENGTH:
                        bad.setdefault(index, ("deviceId", DEVICE_TOO_LONG))
        for source, name, reason in self._plan.bad_params:
            cells = columns[source]
            if any(cells):
                for index, cell in enumerate(cells):
                    if cell:
                        bad.setdefault(index, (name, reason))
        params = [index for index, _ in self._plan.params]
        if len(params) > MAX_PARAMETERS_PER_EVENT:
            for index in range(count):
                if sum(1 for source in params if columns[source][index]) > MAX_PARAMETERS_PER_EVENT:
                    bad.setdefault(index, ("", TOO_MANY_PARAMETERS))

    def _normalise_optional(self, output: list[Sequence[str]]) -> None:
        """Strip value, upper-case currencyCode; columns are in ColumnPlan output order."""
        header = self._plan.output_header
        if "value" in self._plan.arguments:
            position = header.index("value")
            output[position] = list(map(str.strip, output[position]))
        if "currencyCode" in self._plan.arguments:
            position = header.index("currencyCode")
            output[position] = list(map(str.upper, map(str.strip, output[position])))

    def _format(self, kept: Iterable[Sequence[str]]) -> list[str]:
        """CSV lines (without terminator) for the kept rows, in order."""
        buffer, writer = self._buffer, self._writer
        buffer.seek(0)
        buffer.truncate()
        rows = list(kept)
        writer.writerows(rows)
        text = buffer.getvalue()
        if '"' not in text:
            lines = text.split("\r\n")
            lines.pop()
            return lines
        return csv_lines(rows)

    def _collect_events(self, events: Iterable[str]) -> None:
        if self.event_names_capped:
            return
        self.event_names.update(events)
        if len(self.event_names) > MAX_COLLECTED_EVENT_NAMES:
            self.event_names_capped = True
