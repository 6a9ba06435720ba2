"""Every row rule on a block of plain rows held as native columns, the reference's verdicts.

Why the verdicts are the reference's: each rule that looks at one cell alone (userId,
event, value, currencyCode) is decided by the reference's own code, once per distinct cell,
and the verdict is joined back to the rows natively; the rules that compare numbers (times,
lengths, empty cells) are the same comparisons on the same numbers. Where several rules
reject a row, the reference keeps the first in its order (``bad.setdefault``): here the
reasons are coalesced in that very order. Rows whose userId is empty are looked at one by one
(blank rows are skipped, not rejected), as in the reference.
"""

from __future__ import annotations

import polars as pl

from functions.validation.columnar.blocks import column_names
from functions.validation.columnar.lookups import NativeLookups
from functions.validation.columnar.times import ColumnTimes
from functions.validation.columnar.users import UserTable
from functions.validation.columnar.verdicts import (
    ASCII_NUMBER,
    CONTROL,
    SPACES,
    Reasons,
    Verdicts,
)
from functions.validation.columns import TRACK_ARGUMENTS, ColumnPlan
from functions.validation.names import NameChecker
from functions.validation.options import ValidationOptions
from functions.validation.rejected import RejectedWriter
from functions.validation.report import ValidationReport
from functions.validation.rules import (
    CURRENCY_CODES,
    CURRENCY_UNKNOWN,
    DEVICE_TOO_LONG,
    MAX_COLLECTED_EVENT_NAMES,
    MAX_ID_LENGTH,
    OLD_EVENT,
    USER_CONTROL,
    USER_EMPTY,
    USER_TOO_LONG,
    VALUE_NOT_NUMBER,
    _is_number,
    csv_lines,
)
from functions.validation.sorting import NUM_BUCKETS
from functions.validation.timelimits import TimeLimits
from functions.validation.timeparse import FORMATS, TimeParser, zone_for


class TooManyEventNames(Exception):
    """More distinct event names than the report collects: the reference path says which."""


class BlockChecker:
    """Applies the row rules to blocks in input order, feeding the report as it goes.

    Attributes named as the reference checker's (``rows_blank``, ``rows_kept_old``,
    ``event_names``, ``event_names_capped``) feed ``warnings.add_warnings`` alike.
    """

    def __init__(
        self,
        plan: ColumnPlan,
        options: ValidationOptions,
        report: ValidationReport,
        rejected: RejectedWriter,
    ) -> None:
        self._plan = plan
        self._options = options
        self._report = report
        self._rejected = rejected
        self._reasons = Reasons()
        self._names = NameChecker()
        self._times = ColumnTimes(TimeParser(zone_for(options.naive_timezone)))
        self._limits = limits = TimeLimits.of(options)
        self.analytics_limit = limits.analytics
        self._floor_code = self._reasons.code("time", limits.floor_reason)
        self._old_code = self._reasons.code("time", OLD_EVENT)
        self._future_code = self._reasons.code("time", limits.future_reason)
        self.users = UserTable(self._user_verdicts)
        self._values = Verdicts(self._value_verdict)
        self._currencies = Verdicts(self._currency_verdict)
        self._events = Verdicts(self._event_code)
        self._user_empty = self._reasons.code("userId", USER_EMPTY)
        self._columns = column_names(plan.width)
        self.rows_blank = 0
        self.rows_kept_old = 0
        self.event_names: set[str] = set()
        self.event_names_capped = False
        self.lookups_before = NativeLookups()

    @property
    def width(self) -> int:
        """Number of fields every data row must have."""
        return self._plan.width

    def _column(self, argument: str) -> str:
        return self._columns[self._plan.arguments[argument]]

    def read_times(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The block's time cells read (``times.ColumnTimes``): ``check`` takes them, so that
        a thread that reads blocks can read their times too. Only one thread may call it."""
        return self._times.read(frame, self._column("time"), self._limits.now)

    def check(
        self,
        frame: pl.DataFrame,
        first_row: int,
        first_seq: int,
        positions: pl.Series | None = None,
        quoted_from: int | None = None,
        *,
        times: pl.DataFrame | None = None,
    ) -> pl.DataFrame:
        """Check a block whose first row is number ``first_row``; return its kept rows.

        The kept rows come as columns ``bucket``, ``id`` (``self.users``), ``secs`` (time
        written), ``origin`` (time as read), ``tail`` and ``whole`` (the output line without
        its userId field, or whole where that field is quoted) and ``seq`` (input order,
        from ``first_seq``). ``positions``: each row's place in the
        block when the frame is not in block order (None: it is). Rows from ``quoted_from``
        on were read by ``csv.reader``: only their fields may need quoting on output, so
        only their lines are written by ``csv.writer``. ``times``: ``read_times(frame)``,
        if already read.
        """
        columns = self._columns
        arguments = self._plan.arguments
        users = self._judge_users(frame[self._column("userId")])
        events = self._judge_events(frame[self._column("event")])
        if times is None:
            times = self.read_times(frame)
        work = pl.concat([frame, users, events, times], how="horizontal")
        codes: list[pl.Expr] = [pl.col("__ucode"), pl.col("__ecode")]
        failed = self._failed_times(work)
        codes.append(failed)
        secs = pl.col("secs")
        old = secs < self._limits.old
        codes.append(pl.when(secs < self._limits.floor).then(self._floor_code))
        if self._options.old_event_policy == "reject":
            codes.append(pl.when(old).then(self._old_code))
        codes.append(pl.when(secs > self._limits.future).then(self._future_code))
        outputs = {name: pl.col(self._column(name)) for name in arguments}
        if "value" in arguments:
            mapped = self._judge_values(frame[self._column("value")])
            work = work.with_columns(mapped)
            codes.append(pl.col("__vcode"))
            outputs["value"] = pl.col("__value")
        if "currencyCode" in arguments:
            mapped = self._judge_currencies(frame[self._column("currencyCode")])
            work = work.with_columns(mapped)
            codes.append(pl.col("__ccode"))
            outputs["currencyCode"] = pl.col("__currency")
        if "deviceId" in arguments:
            code = self._reasons.code("deviceId", DEVICE_TOO_LONG)
            too_long = pl.col(self._column("deviceId")).str.len_chars() > MAX_ID_LENGTH
            codes.append(pl.when(too_long).then(code))
        for source, name, reason in self._plan.bad_params:
            code = self._reasons.code(name, reason)
            codes.append(pl.when(pl.col(columns[source]) != "").then(code))
        moved = old & (self._options.old_event_policy == "move")
        work = work.with_columns(
            pl.coalesce(codes).alias("__code"),
            pl.when(moved).then(self._limits.moved).otherwise(secs).alias("__secs"),
            pl.when(moved)
            .then(pl.lit(self._limits.moved_text))
            .otherwise(pl.col("text"))
            .alias("__text"),
            old.alias("__old"),
        )
        blank = self._blank_rows(work)
        count = work.height
        work = work.with_columns(
            __pos=pl.int_range(0, count, dtype=pl.Int64, eager=True)
            if positions is None
            else positions.cast(pl.Int64),
            __quoted=pl.int_range(0, count, eager=True)
            >= (count if quoted_from is None else quoted_from),
        )
        kept = self._keep(work, blank, first_row, outputs, ordered=positions is None)
        return kept.with_columns(pl.col("seq") + first_seq)

    def _failed_times(self, work: pl.DataFrame) -> pl.Expr:
        """The reason code of each cell that is not a time (its reason is the reference's)."""
        failed = work.filter(pl.col("fmt") == -1)[self._column("time")].unique().to_list()
        if not failed:
            return pl.lit(None, dtype=pl.Int64)
        values = [self._reasons.code("time", self._times.reason(text)) for text in failed]
        return pl.col(self._column("time")).replace_strict(
            failed, values, default=None, return_dtype=pl.Int64
        )

    def _judge_users(self, cells: pl.Series) -> pl.DataFrame:
        """``__user`` (stripped), ``__id``, ``__bucket``, ``__ucode`` (first userId reason)
        per row.

        Stripping is the reference's ``str.strip`` (on the few cells with a space at an
        edge); lengths count characters as ``len`` does; control characters are the same
        class; the bucket is the reference's CRC-32, computed once per distinct userId.
        """
        users = cells
        padded = cells.str.strip_chars(SPACES) != cells
        if padded.any():
            distinct = cells.filter(padded).unique().to_list()
            stripped = [cell.strip() for cell in distinct]
            users = pl.select(
                pl.when(padded)
                .then(pl.lit(cells).replace_strict(distinct, stripped, default=""))
                .otherwise(pl.lit(cells))
            ).to_series()
        return pl.DataFrame([users.alias("__user"), *self.users.of(users)])

    def _user_verdicts(self, users: pl.Series) -> pl.Series:
        """The first userId reason of each distinct (stripped) userId, null if none."""
        length = users.str.len_chars()
        return pl.select(
            pl.when(length == 0)
            .then(self._user_empty)
            .when(length > MAX_ID_LENGTH)
            .then(self._reasons.code("userId", USER_TOO_LONG))
            .when(users.str.contains(CONTROL))
            .then(self._reasons.code("userId", USER_CONTROL))
            .cast(pl.Int64)
        ).to_series()

    def _judge_events(self, cells: pl.Series) -> pl.DataFrame:
        """``__ecode``: the event-name reason of each row (null: a valid name)."""
        distinct = cells.unique().to_list()
        codes = self._events.of(distinct)
        if all(code is None for code in codes):
            return (
                pl.repeat(None, len(cells), dtype=pl.Int64, eager=True).alias("__ecode").to_frame()
            )
        return (
            cells.replace_strict(distinct, codes, default=None, return_dtype=pl.Int64)
            .alias("__ecode")
            .to_frame()
        )

    def _event_code(self, name: str) -> int | None:
        problem = self._names.problem(name)
        return None if problem is None else self._reasons.code("event", "event " + problem)

    def _value_verdict(self, cell: str) -> tuple[str, int | None]:
        wrong = bool(cell) and not _is_number(cell.strip())
        return cell.strip(), (self._reasons.code("value", VALUE_NOT_NUMBER) if wrong else None)

    def _currency_verdict(self, cell: str) -> tuple[str, int | None]:
        code = cell.strip().upper()
        wrong = bool(code) and code not in CURRENCY_CODES
        return code, (self._reasons.code("currencyCode", CURRENCY_UNKNOWN) if wrong else None)

    def _judge_values(self, cells: pl.Series) -> list[pl.Expr]:
        """``__value`` (stripped) and ``__vcode`` (not a number) per row.

        Empty cells and ASCII numbers that read as finite doubles are settled natively (the
        reference's verdict on them is "a number", text unchanged); every other cell is
        judged by the reference's ``_is_number``, once per distinct cell.
        """
        number = cells.cast(pl.Float64, strict=False)
        settled = (cells == "") | (
            cells.str.contains(ASCII_NUMBER) & number.is_finite().fill_null(False)
        )
        if settled.all():
            return [pl.lit(cells).alias("__value"), pl.lit(None, dtype=pl.Int64).alias("__vcode")]
        others = cells.filter(~settled).unique().to_list()
        verdicts = self._values.of(others)
        texts = [verdict[0] for verdict in verdicts]
        codes = [verdict[1] for verdict in verdicts]
        column = pl.lit(cells)
        return [
            pl.when(pl.lit(settled))
            .then(column)
            .otherwise(column.replace_strict(others, texts, default=""))
            .alias("__value"),
            pl.when(pl.lit(settled))
            .then(pl.lit(None, dtype=pl.Int64))
            .otherwise(column.replace_strict(others, codes, default=None, return_dtype=pl.Int64))
            .alias("__vcode"),
        ]

    def _judge_currencies(self, cells: pl.Series) -> list[pl.Expr]:
        """``__currency`` (stripped, upper-cased) and ``__ccode`` per row."""
        distinct = cells.unique().to_list()
        verdicts = self._currencies.of(distinct)
        column = pl.lit(cells)
        texts = [verdict[0] for verdict in verdicts]
        text = column if texts == distinct else column.replace_strict(distinct, texts)
        codes = [verdict[1] for verdict in verdicts]
        code = (
            pl.lit(None, dtype=pl.Int64)
            if all(value is None for value in codes)
            else column.replace_strict(distinct, codes, default=None, return_dtype=pl.Int64)
        )
        return [text.alias("__currency"), code.alias("__ccode")]

    def _blank_rows(self, work: pl.DataFrame) -> pl.Series | None:
        """Rows whose every field is blank (skipped, not rejected), or None if none is."""
        empty = work["__ucode"] == self._user_empty
        if not empty.any():
            return None
        blank = [False] * work.height
        for index in empty.arg_true().to_list():
            blank[index] = not any(map(str.strip, work.row(index)[: self.width]))
        return pl.Series(blank, dtype=pl.Boolean)

    def _keep(
        self,
        work: pl.DataFrame,
        blank: pl.Series | None,
        first_row: int,
        outputs: dict[str, pl.Expr],
        *,
        ordered: bool,
    ) -> pl.DataFrame:
        """Count and write the rejected rows, count the kept ones, and build their lines."""
        report = self._report
        count = work.height
        blanks = 0 if blank is None else int(blank.sum())
        self.rows_blank += blanks
        report.rows_total += count - blanks
        valid = work["fmt"].filter(work["fmt"] >= 0)
        if valid.len():
            report.count_time_formats(
                {FORMATS[code]: found for code, found in valid.value_counts().iter_rows()}
            )
        if blank is not None:
            work = work.with_columns(__blank=blank)
        else:
            work = work.with_columns(__blank=pl.lit(False))
        rejected = work.filter(pl.col("__code").is_not_null() & ~pl.col("__blank"))
        if rejected.height:
            rejected = rejected.select("__pos", "__code", *self._columns).sort("__pos")
            for position, code, *row in rejected.iter_rows():
                column, reason = self._reasons.pairs[code]
                number = first_row + position
                report.reject(number, column, reason)
                self._rejected.write(number, column, reason, row)
        kept = work.filter(pl.col("__code").is_null() & ~pl.col("__blank"))
        old = kept["__old"]
        if self._options.old_event_policy == "move":
            report.rows_time_clamped += int(old.sum())
        elif self._options.old_event_policy == "keep":
            self.rows_kept_old += int(old.sum())
        report.rows_written += kept.height
        report.rows_hidden_from_analytics += int((kept["__secs"] < self.analytics_limit).sum())
        self._collect_events(kept[self._column("event")])
        if ordered:
            self.lookups_before.feed(kept["__id"])
        else:
            self.lookups_before.feed(kept.select("__id", "__pos").sort("__pos")["__id"])
        outputs["userId"] = pl.col("__user")
        outputs["time"] = pl.col("__text")
        order = [name for name in TRACK_ARGUMENTS if name in self._plan.arguments]
        parts = [outputs[name] for name in order]
        parts += [pl.col(self._columns[index]) for index, _ in self._plan.params]
        if order[0] != "userId":
            raise RuntimeError("BlockChecker: output lines must start with the userId")
        # The tail of each line: the line without its userId field (see ``grouping``).
        result = kept.select(
            pl.col("__bucket").alias("bucket"),
            pl.col("__id").alias("id"),
            pl.col("__secs").alias("secs"),
            pl.col("secs").alias("origin"),
            pl.concat_str(parts[1:], separator=",").alias("tail"),
            pl.lit(False).alias("whole"),
            pl.col("__pos").alias("seq"),
        )
        taken = kept["__quoted"]
        if taken.any():
            named = [part.alias(f"__out{i}") for i, part in enumerate(parts)]
            rows = kept.filter(taken).select(named).rows()
            lines = csv_lines(rows)
            # A quoted userId field (it holds a quote or a comma) keeps the whole line.
            wholes = [line.startswith('"') for line in lines]
            tails = [
                line if whole else line[len(row[0]) + 1 :]
                for line, whole, row in zip(lines, wholes, rows, strict=True)
            ]
            where = taken.arg_true()
            result = result.with_columns(
                result["tail"].scatter(where, pl.Series(tails, dtype=pl.String)),
                result["whole"].scatter(where, pl.Series(wholes, dtype=pl.Boolean)),
            )
        return result

    def _collect_events(self, events: pl.Series) -> None:
        self.event_names.update(events.unique().to_list())
        if len(self.event_names) > MAX_COLLECTED_EVENT_NAMES:
            raise TooManyEventNames


if NUM_BUCKETS > 256:  # buckets travel as UInt8
    raise RuntimeError("NUM_BUCKETS must fit in UInt8")
