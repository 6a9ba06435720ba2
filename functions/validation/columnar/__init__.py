"""The columnar path: plain files validated on native columns (Polars), same bytes as the
reference.

Why: the reference spends its time in Python steps per row (time cells, the sort by user,
building lines). Here a block of lines is parsed, checked, keyed and grouped by Polars,
whose kernels run in Rust on every vCPU; the reference's own code still decides every
verdict that depends on one cell's text (once per distinct cell), so the rules exist once.

Which files: *plain* ones (``blocks``): quotes only within one-line records (read by
``csv.reader`` itself), no NUL, no bare carriage return, no empty line, valid UTF-8, every
line with the header's number of fields, no field as long as the CSV field size limit, an
unquoted header, at most 50 parameter columns, at most ``MAX_COLLECTED_EVENT_NAMES`` distinct
event names, distinct userIds within ``users.MAX_USER_BYTES``. That is what exporters
write. Anything else returns None (logging why) before a byte of output is written, and the
caller runs the reference path on the same stream from the same position; the rejected-rows
stream may then hold a partial file, which the caller truncates.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

# Polars' allocator (jemalloc) keeps an arena per thread by default; one arena holds the
# peak memory of a run about 15% lower at no measured cost in time. Read when Polars loads,
# so it must be set before the first import; a value set by the deployer wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1")

import polars as pl

from functions.validation.capacity import remaining_bytes
from functions.validation.columnar.ahead import ahead
from functions.validation.columnar.blocks import (
    Blocks,
    NotPlain,
    check_plain,
    column_names,
    split_quoted,
)
from functions.validation.columnar.checking import BlockChecker, TooManyEventNames
from functions.validation.columnar.grouping import ColumnarGrouper, groups_for
from functions.validation.columnar.users import TooManyUsers
from functions.validation.columns import HeaderError, plan_columns
from functions.validation.options import ValidationOptions
from functions.validation.rejected import RejectedWriter
from functions.validation.report import ValidationReport
from functions.validation.rules import MAX_PARAMETERS_PER_EVENT
from functions.validation.warnings import add_warnings

__all__ = ["NotPlain", "validate_columnar"]
_LOG = logging.getLogger(__name__)


def _parse(text: bytes, width: int) -> pl.DataFrame:
    """The block's lines as ``width`` String columns (empty fields as "")."""
    schema = dict.fromkeys(column_names(width), pl.String)
    frame = pl.read_csv(
        io.BytesIO(text),
        has_header=False,
        schema=schema,
        quote_char=None,
        infer_schema=False,
        encoding="utf8",
    )
    return frame.with_columns(pl.all().fill_null(""))


def _read_block(
    block: bytes, width: int, limit: int
) -> tuple[pl.DataFrame, pl.Series | None, int | None]:
    """The block's rows as String columns: plain lines first, then the lines read by
    ``csv.reader``; each row's place in the block (None when the frame is in block order);
    the index of the first row read by ``csv.reader`` (None: there is none)."""
    positions: list[int] = []
    rows: list[list[str]] = []
    if b'"' in block:
        block, positions, rows = split_quoted(block, width)
    names = column_names(width)
    frame = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
    if block:
        check_plain(block)
        frame = _parse(block, width)
        if block.count(b",") != (width - 1) * frame.height:
            raise NotPlain("a line with another number of fields than the header")
        longest = frame.select(pl.all().str.len_bytes().max()).row(0)
        if max(longest) >= limit:
            raise NotPlain("a field as long as the CSV field size limit")
    if not positions:
        return frame, None, None
    total = frame.height + len(positions)
    plain_at = pl.int_range(0, total, eager=True, dtype=pl.Int64)
    plain_at = plain_at.filter(~plain_at.is_in(positions))
    taken = pl.DataFrame(rows, schema=names, orient="row")
    at = pl.concat([plain_at, pl.Series(positions, dtype=pl.Int64)])
    return pl.concat([frame, taken]), at, frame.height


def _declined(error: Exception) -> None:
    """Say why the reference path takes over (a log line, and None for the caller)."""
    reason = str(error) or type(error).__name__
    _LOG.info("columnar validation not used: %s", reason, extra={"columnar_declined": reason})


def validate_columnar(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    *,
    decide: Callable[[ValidationReport, ValidationOptions], None],
    header_bytes: Callable[[list[str]], bytes],
    progress: Callable[[int], None] | None = None,
) -> ValidationReport | None:
    """Validate a plain file natively; None (nothing written to ``output``) if it is not one.

    ``decide`` and ``header_bytes`` are the reference's (``core``), passed in so that the
    acceptance rule and the output header exist once.
    """
    blocks = Blocks(source)
    try:
        header = blocks.header().decode("utf-8").split(",")
        plan = plan_columns(header, options.column_map, options.drop_columns)
    except (NotPlain, UnicodeDecodeError, HeaderError) as error:
        _declined(error)
        return None
    if len(plan.params) > MAX_PARAMETERS_PER_EVENT:
        _declined(NotPlain("more than 50 parameter columns"))
        return None
    limit = csv.field_size_limit()
    blocks.limit_lines(plan.width, limit)
    report = ValidationReport()
    report.column_mapping = plan.mapping
    rejected_text = io.TextIOWrapper(rejected, encoding="utf-8", newline="", write_through=True)
    checker = BlockChecker(plan, options, report, RejectedWriter(rejected_text, header))
    grouper = ColumnarGrouper(temp_dir=options.temp_dir, groups=groups_for(remaining_bytes(source)))

    def parsed() -> Iterator[tuple[pl.DataFrame, pl.Series | None, int | None, pl.DataFrame, int]]:
        """Each block read into columns, its times read, and the input bytes read so far."""
        for block in blocks:
            frame, positions, quoted_from = _read_block(block, plan.width, limit)
            yield frame, positions, quoted_from, checker.read_times(frame), blocks.bytes_read

    def checked() -> Iterator[tuple[pl.DataFrame, int]]:
        """Each block's kept rows (and the input bytes read so far), in input order."""
        row = 2
        for frame, positions, quoted_from, times, done in ahead(parsed()):
            yield checker.check(frame, row, row, positions, quoted_from, times=times), done
            row += frame.height

    try:
        for kept, done in ahead(checked()):
            grouper.add(kept)
            if progress is not None:
                progress(done)
        report.user_lookups_before = checker.lookups_before.finish()
        decide(report, options)
        if report.accepted:
            header_line = header_bytes(plan.output_header)
            output.write(header_line)
            written = grouper.write(
                output,
                checker.users,
                drop_repeats=options.duplicate_rows == "drop",
                analytics_limit=checker.analytics_limit,
            )
            report.bytes_written = len(header_line) + written.bytes
            report.user_lookups_after = written.lookups
            if options.duplicate_rows == "drop":
                report.rows_duplicate_dropped = written.dropped
                report.rows_written -= written.dropped
                report.rows_hidden_from_analytics -= written.dropped_before
                report.rows_time_clamped -= written.dropped_moved
        add_warnings(report, checker, plan, blocks.had_bom)
        report.bytes_read = blocks.bytes_read
        rejected_text.flush()
        return report
    except (NotPlain, TooManyEventNames, TooManyUsers, pl.exceptions.PolarsError) as error:
        _declined(error)
        return None
    finally:
        grouper.close()
        rejected_text.detach()
