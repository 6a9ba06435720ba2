"""validate_csv: read, check, group by user, write; the one code path of function and CLI."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from typing import BinaryIO

from functions.validation.billing import LookupCounter
from functions.validation.capacity import remaining_bytes, worker_count
from functions.validation.columns import ColumnPlan, HeaderError, plan_columns
from functions.validation.decoding import LineSource
from functions.validation.duplicates import RepeatFilter
from functions.validation.fastrules import FastChunkChecker
from functions.validation.options import ValidationOptions
from functions.validation.reading import ChunkReader
from functions.validation.rejected import RejectedWriter
from functions.validation.report import ValidationReport
from functions.validation.rules import ChunkChecker
from functions.validation.sorting import UserGrouper
from functions.validation.warnings import add_warnings

#: Rows checked together; big enough for C-level column work to dominate, small enough to
#: keep a chunk's Python objects (a few MB) negligible against the sort budget.
CHUNK_ROWS = 8192
_WRITE_LINES = 8192
_LOG = logging.getLogger(__name__)
#: False: the reference path only (one process, ``rules.ChunkChecker``), which the
#: equivalence tests compare the fast paths (``fastrules``, ``parallel``) against.
FAST = True
#: Inputs at least this big try the columnar path (``columnar``) first. Below it the columnar
#: path does not pay: importing Polars and its first calls cost about 0.3 s and 100 MB once
#: per instance, and a 9 MB file measured no faster than the reference. Tests lower it.
COLUMNAR_MIN_BYTES = 16 << 20


class _Refused(Exception):
    """Internal: stop reading, the file is refused for the reason given."""


def validate_csv(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate ``source`` and write the normalised file to ``output``.

    ``source`` is streamed (never loaded whole). ``output`` receives the normalised CSV only
    when the file is accepted; ``rejected`` receives the rejected-rows CSV (row number, column,
    reason, then the row as read). ``progress``, when given, is called after each chunk with
    the number of input bytes read so far. Memory is bounded (see ``sorting``); temporary
    spill files go to ``options.temp_dir``.

    A plain file (see ``columnar``) of at least ``COLUMNAR_MIN_BYTES`` is validated on native
    columns: same bytes, faster. Other files, where several vCPUs are usable and idle and the
    input is big (``capacity``), share the work with worker processes (``parallel``): same
    code, same bytes. Should the workers fail (killed for memory, say) the run starts again
    here, in one process, from the same stream positions (the parallel path is used only
    when all three streams can seek).
    """
    from functions.validation import parallel  # here: it imports this module
    from functions.validation.pool import WorkerError

    if FAST and remaining_bytes(source) >= COLUMNAR_MIN_BYTES:
        marks = _positions(source, output, rejected)
        if marks is not None:
            report = _columnar(source, output, rejected, options, progress)
            if report is not None:
                return report
            _rewind(marks, source, output, rejected)
    count = worker_count(source, options) if FAST else 0
    if count > 1:
        marks = _positions(source, output, rejected)
        if marks is not None:
            try:
                return parallel.validate_parallel(
                    source, output, rejected, options, count=count, progress=progress
                )
            except WorkerError as error:
                _LOG.warning("parallel validation failed, validating sequentially: %s", error)
                _rewind(marks, source, output, rejected)
    return _validate_sequential(source, output, rejected, options, progress)


def _columnar(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    progress: Callable[[int], None] | None,
) -> ValidationReport | None:
    """The columnar path's report, or None when it declines or Polars cannot load here."""
    try:
        from functions.validation.columnar import validate_columnar  # Polars: on demand
    except ImportError as error:
        _LOG.warning("columnar validation unavailable, Polars did not load: %s", error)
        return None
    return validate_columnar(
        source,
        output,
        rejected,
        options,
        decide=_decide,
        header_bytes=header_bytes,
        progress=progress,
    )


def _positions(*streams: BinaryIO) -> list[int] | None:
    """Where each stream stands, to start again from there; None if one cannot seek."""
    try:
        if not all(stream.seekable() for stream in streams):
            return None
        return [stream.tell() for stream in streams]
    except (OSError, ValueError, AttributeError):
        return None


def _rewind(marks: list[int], source: BinaryIO, *written: BinaryIO) -> None:
    """Back to the marks, dropping what the failed run wrote."""
    source.seek(marks[0])
    for stream, mark in zip(written, marks[1:], strict=True):
        stream.seek(mark)
        stream.truncate()


def _validate_sequential(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """One process, chunk by chunk: the reference when ``FAST`` is False, else the same
    steps with ``fastrules.FastChunkChecker`` (see ``_start``)."""
    report = ValidationReport()
    lines = LineSource(source)
    reader = ChunkReader(lines)
    rejected_text = io.TextIOWrapper(rejected, encoding="utf-8", newline="", write_through=True)
    grouper = UserGrouper(temp_dir=options.temp_dir)
    try:
        try:
            plan, checker, seen = _start(reader, lines, rejected_text, options, report)
            _read_rows(
                reader=reader,
                lines=lines,
                checker=checker,
                grouper=grouper,
                seen=seen,
                report=report,
                progress=progress,
            )
        except _Refused as refusal:
            report.refusal_reason = str(refusal)
        else:
            _decide(report, options)
            if report.accepted:
                repeats = None
                if options.duplicate_rows == "drop":
                    repeats = RepeatFilter(checker.analytics_limit)
                _write_output(output, plan, grouper, report, repeats)
            add_warnings(report, checker, plan, lines.had_bom)
        report.bytes_read = lines.bytes_read
        rejected_text.flush()
        return report
    finally:
        grouper.close()
        rejected_text.detach()


def _start(
    reader: ChunkReader,
    lines: LineSource,
    rejected: io.TextIOBase,
    options: ValidationOptions,
    report: ValidationReport,
) -> tuple[ColumnPlan, ChunkChecker, int]:
    """Read the header (first non-blank record) and set up the checker."""
    seen = 0
    header: list[str] | None = None
    try:
        while True:
            records = reader.rows(1)
            if not records:
                break
            row = records[0]
            seen += 1
            if reader.problem_seen:
                break
            if any(map(str.strip, row)):
                header = row
                break
    except csv.Error as error:
        raise _Refused(f"not a readable CSV file near line {reader.line_num}: {error}") from None
    if reader.problem_seen:
        raise _Refused(_encoding_reason(lines, seen))
    if header is None:
        raise _Refused("the file is empty: no header row")
    try:
        plan = plan_columns(header, options.column_map, options.drop_columns)
    except HeaderError as error:
        raise _Refused(str(error)) from None
    report.column_mapping = plan.mapping
    kind = FastChunkChecker if FAST else ChunkChecker
    checker = kind(plan, options, report, RejectedWriter(rejected, header))
    return plan, checker, seen


def _encoding_reason(lines: LineSource, row: int) -> str:
    problem = lines.problem
    if problem is None:
        raise RuntimeError("an encoding refusal without an encoding problem")
    return (
        f"the file is not valid UTF-8: row {row} holds the first invalid byte"
        f" (byte offset {problem.offset}: {problem.reason});"
        " re-export it as UTF-8"
    )


def _read_rows(
    *,
    reader: ChunkReader,
    lines: LineSource,
    checker: ChunkChecker,
    grouper: UserGrouper,
    seen: int,
    report: ValidationReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Check every data row chunk by chunk and hand the kept ones to the grouper.

    Chunks are always ``CHUNK_ROWS`` records, however they were read, so that rejections
    are listed in the same order and row numbers are the same either way.
    """
    width = checker.width
    while True:
        try:
            chunk = reader.read_chunk(CHUNK_ROWS, width)
        except csv.Error as error:
            raise _Refused(
                f"not a readable CSV file near line {reader.line_num}: {error}"
            ) from None
        if reader.problem_seen:
            raise _Refused(_encoding_reason(lines, seen + chunk.records))
        if not chunk.records:
            break
        kept = checker.check_chunk(chunk, seen + 1)
        seen += chunk.records
        grouper.add_rows(
            kept.buckets, kept.users, kept.seconds, kept.lines, kept.size, origins=kept.origins
        )
        if progress is not None:
            progress(lines.bytes_read)
    report.user_lookups_before = checker.lookups_before.finish()


def _decide(report: ValidationReport, options: ValidationOptions) -> None:
    """Accept, or refuse when too many rows were rejected or none is left."""
    if report.rows_written == 0:
        report.refusal_reason = (
            "no valid row left" if report.rows_total else "the file has no data rows"
        )
        return
    fraction = report.rows_rejected / report.rows_total
    if fraction > options.max_rejected_fraction:
        report.refusal_reason = (
            f"{report.rows_rejected} of {report.rows_total} rows rejected ({fraction:.1%}),"
            f" over the limit of {options.max_rejected_fraction:.1%};"
            " see the rejections by reason"
        )
        return
    report.accepted = True


def header_bytes(names: list[str]) -> bytes:
    """The output's header line: ``csv.writer``'s quoting, UTF-8, one LF."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(names)
    return buffer.getvalue()[:-2].encode("utf-8") + b"\n"


def _write_output(
    output: BinaryIO,
    plan: ColumnPlan,
    grouper: UserGrouper,
    report: ValidationReport,
    repeats: RepeatFilter | None,
) -> None:
    """Write the header and the grouped rows as UTF-8 without BOM, LF line endings.

    Rows repeating another exactly are dropped here, where grouping makes them neighbours;
    the counts made while checking (written, hidden from Analytics) are corrected after.
    """
    written = output.write(header_bytes(plan.output_header))
    lookups = LookupCounter()
    for users, lines in grouper.sorted_batches(repeats):
        lookups.feed(users)
        for start in range(0, len(lines), _WRITE_LINES):
            part = lines[start : start + _WRITE_LINES]
            written += output.write(("\n".join(part) + "\n").encode("utf-8"))
    report.user_lookups_after = lookups.finish()
    report.bytes_written = written
    if repeats is not None:
        report.rows_duplicate_dropped = repeats.dropped
        report.rows_written -= repeats.dropped
        report.rows_hidden_from_analytics -= repeats.dropped_before
        report.rows_time_clamped -= repeats.dropped_moved
