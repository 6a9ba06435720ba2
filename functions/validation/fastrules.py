"""``ChunkChecker`` with its per-row Python loops replaced by C-level passes, same results.

Why a subclass and not an edit of ``rules``: ``rules.ChunkChecker`` stays the reference that
the equivalence tests compare against. Each method here is the reference's, step for step;
only the scans change: where the reference walks every row in Python once a quick look has
found a problem (an empty userId, a bad event name, an old event), this one finds the rows
concerned with ``itertools.compress`` over a C-level test, then visits only those, in the
same order; time cells are parsed by groups (``fasttime``). ``bad.setdefault`` is called for
the same rows with the same reasons in the same rule order, so every row keeps the reason
the reference gives it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import gt, lt, not_

from functions.validation import fasttime
from functions.validation.rules import (
    _CONTROL,
    CURRENCY_CODES,
    CURRENCY_UNKNOWN,
    DEVICE_TOO_LONG,
    MAX_ID_LENGTH,
    MAX_PARAMETERS_PER_EVENT,
    OLD_EVENT,
    TOO_MANY_PARAMETERS,
    USER_CONTROL,
    USER_EMPTY,
    USER_TOO_LONG,
    VALUE_NOT_NUMBER,
    ChunkChecker,
    Kept,
    _is_number,
    _row,
)
from functions.validation.sorting import NUM_BUCKETS, RECORD_OVERHEAD

Bad = dict[int, tuple[str, str]]


def buckets_of(users: list[str]) -> list[int]:
    """``sorting.buckets_of`` without a Python step per user."""
    return list(map((NUM_BUCKETS - 1).__and__, map(zlib.crc32, map(str.encode, users))))


def _where(flags: Iterable[object]) -> list[int]:
    """Indexes of the true flags, at C speed."""
    return list(compress(range(1 << 62), flags))


class FastChunkChecker(ChunkChecker):
    """The reference checker, with C-level scans (see the module doc)."""

    def _check(
        self,
        columns: list[Sequence[str]],
        count: int,
        first_row: int,
        numbers: list[int] | None,
        *,
        quoted: list[int] | None,
    ) -> Kept:
        bad: Bad = {}
        blank: set[int] = set()
        arguments = self._plan.arguments

        users = list(map(str.strip, columns[arguments["userId"]]))
        lengths = list(map(len, users))
        if min(lengths) == 0 or max(lengths) > MAX_ID_LENGTH:
            # The reference's one pass: each row is either empty or too long, never both.
            for index in _where(map(not_, lengths)):
                if any(map(str.strip, _row(columns, index))):
                    bad.setdefault(index, ("userId", USER_EMPTY))
                else:
                    blank.add(index)
            for index in _where(map(MAX_ID_LENGTH.__lt__, lengths)):
                bad.setdefault(index, ("userId", USER_TOO_LONG))
        if _CONTROL.search("".join(users)):
            for index in _where(map(_CONTROL.search, users)):
                bad.setdefault(index, ("userId", USER_CONTROL))

        events = columns[arguments["event"]]
        problems = {
            name: problem
            for name in set(events)
            if (problem := self._names.problem(name)) is not None
        }
        if problems:
            for index in _where(map(problems.__contains__, events)):
                bad.setdefault(index, ("event", "event " + problems[events[index]]))

        times, texts, old = self._check_times(columns[arguments["time"]], bad)
        self._check_optional(columns, count, bad)
        state = (bad, blank, users, events, times, texts, old)
        return self._finish(
            columns, count, first_row=first_row, numbers=numbers, quoted=quoted, state=state
        )

    def _finish(
        self,
        columns: list[Sequence[str]],
        count: int,
        *,
        first_row: int,
        numbers: list[int] | None,
        quoted: list[int] | None,
        state: tuple[Bad, set[int], list[str], Sequence[str], list[float], list[str], list[int]],
    ) -> Kept:
        """The second half of the reference ``_check``: reject, move, format, count."""
        bad, blank, users, events, times, texts, old = state
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
        self, cells: Sequence[str], bad: Bad
    ) -> tuple[list[float], list[str], list[int]]:
        times, texts, failed, formats = fasttime.parse_column(self._parser, cells, self._limits.now)
        self._report.count_time_formats(formats)
        for index in failed:
            bad.setdefault(index, ("time", self._parser.reason(cells[index])))
        old: list[int] = []
        if min(times) < self._limits.floor:
            for index in _where(map(lt, times, repeat(self._limits.floor))):
                bad.setdefault(index, ("time", self._limits.floor_reason))
        if min(times) < self._limits.old:
            old = _where(map(lt, times, repeat(self._limits.old)))
            if self._policy == "reject":
                for index in old:
                    bad.setdefault(index, ("time", OLD_EVENT))
                old = []
        if max(times) > self._limits.future:
            for index in _where(map(gt, times, repeat(self._limits.future))):
                bad.setdefault(index, ("time", self._limits.future_reason))
        return times, texts, old

    def _check_optional(self, columns: list[Sequence[str]], count: int, bad: Bad) -> None:
        arguments = self._plan.arguments
        if "value" in arguments:
            cells = columns[arguments["value"]]
            wrong = {cell for cell in set(cells) if cell and not _is_number(cell.strip())}
            if wrong:
                for index in _where(map(wrong.__contains__, cells)):
                    bad.setdefault(index, ("value", VALUE_NOT_NUMBER))
        if "currencyCode" in arguments:
            cells = columns[arguments["currencyCode"]]
            unknown = {
                cell
                for cell in set(cells)
                if (code := cell.strip().upper()) and code not in CURRENCY_CODES
            }
            if unknown:
                for index in _where(map(unknown.__contains__, cells)):
                    bad.setdefault(index, ("currencyCode", CURRENCY_UNKNOWN))
        if "deviceId" in arguments:
            cells = columns[arguments["deviceId"]]
            if max(map(len, cells)) > MAX_ID_LENGTH:
                for index in _where(map(MAX_ID_LENGTH.__lt__, map(len, cells))):
                    bad.setdefault(index, ("deviceId", DEVICE_TOO_LONG))
        for source, name, reason in self._plan.bad_params:
            cells = columns[source]
            if any(cells):
                for index in _where(cells):
                    bad.setdefault(index, (name, reason))
        params = [index for index, _ in self._plan.params]
        if len(params) > MAX_PARAMETERS_PER_EVENT:
            filled = [0] * count
            for source in params:
                filled = list(map(int.__add__, filled, map(bool, columns[source])))
            for index in _where(map(MAX_PARAMETERS_PER_EVENT.__lt__, filled)):
                bad.setdefault(index, ("", TOO_MANY_PARAMETERS))
