"""validate_csv on several vCPUs: the same code, the rows checked and sorted by workers.

Why processes and not a native engine: every rule, the time formats, the CSV quirks and the
output bytes are defined by the sequential path (``core``), and a second implementation
would have to be proved equal cell by cell. Here the worker processes run that very code
(``workers``) on the very chunks the sequential path makes, so equality follows from the
order in which their effects are applied, which the main process keeps:

1. The main process decodes the input and cuts it into chunks (``scanning``: plain stretches
   of lines travel as one string, quoted records as ``csv.reader`` read them). Workers build
   each chunk's columns, apply the rules and deal the kept rows to the 256 hash buckets of
   ``sorting``, packing each bucket's slice as the spill file stores it. The main process
   applies each chunk's effects in input order (counts, listed rejections, rejected-rows
   text, event names, billed lookups) and keeps the slices, in memory up to a budget and
   then in the spill file.
2. Once the file is accepted, workers sort one bucket each (the sequential path's own sort
   and repeat filter) and return its output bytes; the main process writes them in bucket
   order. A bucket too big for the memory budget is merged in the main process, as the
   sequential path does.

Memory: at most ``2 * workers + 1`` tasks of ``TASK_CHUNKS`` chunks, or ``2 * workers + 2``
buckets, are in flight; slices (zlib level 1, ``workers.SLICE_LEVEL``) beyond
``SLICE_MEMORY_BYTES`` go to the spill file (in ``options.temp_dir``), as in ``sorting``.
Used only where there are several vCPUs and the input is big enough to repay the start of
the workers (see ``capacity.worker_count``); otherwise ``core`` runs the sequential path.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Callable, Iterable
from typing import BinaryIO

from functions.validation import core, sorting, workers
from functions.validation.decoding import LineSource
from functions.validation.duplicates import RepeatFilter
from functions.validation.options import ValidationOptions
from functions.validation.pool import WorkerPool
from functions.validation.report import MAX_LISTED_REJECTIONS, ValidationReport
from functions.validation.rules import ChunkChecker
from functions.validation.scanning import RecipeReader, Step
from functions.validation.warnings import add_warnings

#: Bucket slices kept in the main process's memory before they go to the spill file.
SLICE_MEMORY_BYTES = 24 * 1024 * 1024
#: The pool class; tests use ``pool.InlinePool`` to run the same protocol in one process.
POOL_CLASS: type[WorkerPool] = WorkerPool
#: Chunks (of ``core.CHUNK_ROWS`` records) per worker task.
TASK_CHUNKS = 2
#: Rows per billed batch (billing.BATCH_ACTIONS).
_BATCH = 50


def validate_parallel(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    *,
    count: int,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """``core.validate_csv`` with ``count`` worker processes: the same report and bytes."""
    report = ValidationReport()
    lines = LineSource(source)
    reader = RecipeReader(lines)
    rejected_text = io.TextIOWrapper(rejected, encoding="utf-8", newline="", write_through=True)
    grouper = sorting.UserGrouper(temp_dir=options.temp_dir)
    pool: WorkerPool | None = None
    try:
        try:
            plan, checker, seen = core._start(reader, lines, rejected_text, options, report)
            pool = POOL_CLASS(count, ("start", (plan, options, plan.names)))
            slices = _Slices(grouper)
            _read_rows(
                pool=pool,
                count=count,
                reader=reader,
                lines=lines,
                checker=checker,
                slices=slices,
                seen=seen,
                report=report,
                rejected=rejected_text,
                progress=progress,
            )
        except core._Refused as refusal:
            report.refusal_reason = str(refusal)
        else:
            core._decide(report, options)
            if report.accepted:
                before = checker.analytics_limit if options.duplicate_rows == "drop" else None
                _write_output(
                    pool=pool,
                    count=count,
                    output=output,
                    header=plan.output_header,
                    slices=slices,
                    report=report,
                    before=before,
                )
            add_warnings(report, checker, plan, lines.had_bom)
        report.bytes_read = lines.bytes_read
        rejected_text.flush()
        return report
    finally:
        if pool is not None:
            pool.close()
        grouper.close()
        rejected_text.detach()


class _Slices:
    """Each bucket's slices in input order: in memory up to a budget, then spilled."""

    def __init__(self, grouper: sorting.UserGrouper) -> None:
        self._grouper = grouper
        self._memory: list[list[tuple[bytes, int]]] = [[] for _ in range(sorting.NUM_BUCKETS)]
        self._held = 0
        self.estimate = [0] * sorting.NUM_BUCKETS

    def add(self, bucket: int, data: bytes, size: int) -> None:
        self._memory[bucket].append((data, size))
        self.estimate[bucket] += size
        self._held += len(data)
        if self._held > SLICE_MEMORY_BYTES:
            for number in range(sorting.NUM_BUCKETS):
                self.spill(number)
            self._held = 0

    def spill(self, bucket: int) -> None:
        """Move a bucket's slices from memory to the spill file (after its earlier ones)."""
        for data, size in self._memory[bucket]:
            self._grouper.append_piece(bucket, data, size)
            self._held -= len(data)
        self._memory[bucket] = []

    def merged(
        self, bucket: int, repeats: RepeatFilter | None
    ) -> Iterable[tuple[list[str], list[str]]]:
        """A spilled bucket too big for memory, merged from sorted runs (see ``sorting``)."""
        return self._grouper.merged_batches(bucket, repeats)

    def take(self, bucket: int) -> list[bytes]:
        """All slices of a bucket, in input order (spilled ones are the earlier)."""
        grouper = self._grouper
        pieces = [grouper.read_piece(piece) for piece in grouper.pieces_of(bucket)]
        pieces += [data for data, _ in self._memory[bucket]]
        self._memory[bucket] = []
        return pieces


def _read_rows(
    *,
    pool: WorkerPool,
    count: int,
    reader: RecipeReader,
    lines: LineSource,
    checker: ChunkChecker,
    slices: _Slices,
    seen: int,
    report: ValidationReport,
    rejected: io.TextIOBase,
    progress: Callable[[int], None] | None,
) -> None:
    """``core._read_rows`` with the chunks checked by workers, their effects applied in order.

    Chunks go to the workers ``TASK_CHUNKS`` at a time; a refusal (unreadable CSV, invalid
    UTF-8) first lets every chunk before it be checked and applied, as in ``core``.
    """
    batch: list[tuple[list[Step], int]] = []

    def submit() -> None:
        if batch:
            pool.submit("check", list(batch))
            batch.clear()

    def apply_next() -> None:
        result: workers.CheckResult = pool.result()
        for effects in result.effects:
            _apply(effects, checker, report, rejected)
        for bucket, data, size in result.slices:
            slices.add(bucket, data, size)
        if progress is not None:
            progress(lines.bytes_read)

    def drain() -> None:
        submit()
        while pool.pending:
            apply_next()

    while True:
        try:
            recipe = reader.read_recipe(core.CHUNK_ROWS)
        except csv.Error as error:
            reason = f"not a readable CSV file near line {reader.line_num}: {error}"
            drain()
            raise core._Refused(reason) from None
        if reader.problem_seen:
            reason = core._encoding_reason(lines, seen + recipe.records)
            drain()
            raise core._Refused(reason)
        if not recipe.records:
            break
        batch.append((recipe.steps, seen + 1))
        seen += recipe.records
        del recipe
        if len(batch) >= TASK_CHUNKS:
            submit()
            while pool.pending > 2 * count:
                apply_next()
    drain()
    report.user_lookups_before = checker.lookups_before.finish()


def _apply(
    result: workers.ChunkEffects,
    checker: ChunkChecker,
    report: ValidationReport,
    rejected: io.TextIOBase,
) -> None:
    """One chunk's effects, as ``ChunkChecker.check_chunk`` would have made them."""
    part = result.report
    report.rows_total += part.rows_total
    report.rows_written += part.rows_written
    report.rows_time_clamped += part.rows_time_clamped
    report.rows_hidden_from_analytics += part.rows_hidden_from_analytics
    report.count_time_formats(part.time_formats)
    report.rows_rejected += part.rows_rejected
    by_reason = report.rejections_by_reason
    for reason, number in part.rejections_by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + number
    room = MAX_LISTED_REJECTIONS - len(report.rejections)
    if room > 0:
        report.rejections.extend(part.rejections[:room])
    if result.rejected_text:
        rejected.write(result.rejected_text)
    checker.rows_blank += result.rows_blank
    checker.rows_kept_old += result.rows_kept_old
    checker._collect_events(result.events)
    if result.users:
        checker.lookups_before.feed(result.users.split("\n"))


class _Lookups:
    """Billed lookups of the output (``billing.LookupCounter`` without the users).

    In the output every user's rows are contiguous, so the distinct users of a 50-row batch
    are the runs of users it touches: one, plus one per user starting inside it. The total
    is therefore the number of batches plus the users starting at a position that is not a
    multiple of 50.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._starts = 0
        self._last: str | None = None

    def add_bucket(self, starts: Iterable[int], rows: int) -> None:
        """A bucket's rows: its first row starts a user, ``starts`` are the others (from 1)."""
        if not rows:
            return
        base = self.rows
        self._starts += (base % _BATCH != 0) + sum(1 for p in starts if (base + p) % _BATCH)
        self.rows += rows
        self._last = None

    def add_users(self, users: list[str]) -> None:
        """Rows given by their users (the merged batches of an oversized bucket)."""
        if not users:
            return
        base = self.rows
        if users[0] != self._last and base % _BATCH:
            self._starts += 1
        changes = (p for p in range(1, len(users)) if users[p] != users[p - 1])
        self._starts += sum(1 for p in changes if (base + p) % _BATCH)
        self.rows += len(users)
        self._last = users[-1]

    def total(self) -> int:
        return -(-self.rows // _BATCH) + self._starts


def _write_output(
    *,
    pool: WorkerPool,
    count: int,
    output: BinaryIO,
    header: list[str],
    slices: _Slices,
    report: ValidationReport,
    before: float | None,
) -> None:
    """``core._write_output``: buckets sorted by workers, written in bucket order."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(header)
    written = output.write(buffer.getvalue()[:-2].encode("utf-8") + b"\n")
    lookups = _Lookups()
    dropped = [0, 0, 0]

    def write_next() -> None:
        nonlocal written
        result: workers.BucketResult = pool.result()
        written += output.write(result.data)
        starts = array("q")
        starts.frombytes(result.user_starts)
        lookups.add_bucket(starts, result.rows)
        dropped[0] += result.dropped
        dropped[1] += result.dropped_before
        dropped[2] += result.dropped_moved

    budget = sorting.DEFAULT_BUDGET_BYTES
    for bucket in range(sorting.NUM_BUCKETS):
        if not slices.estimate[bucket]:
            continue
        if slices.estimate[bucket] <= budget:
            pool.submit("finish", slices.take(bucket), before)
            while pool.pending > 2 * count + 2:
                write_next()
            continue
        # Too big to sort in memory: merged here, in order, as the sequential path does.
        while pool.pending:
            write_next()
        slices.spill(bucket)
        repeats = RepeatFilter(before) if before is not None else None
        for users, lines in slices.merged(bucket, repeats):
            lookups.add_users(users)
            for start in range(0, len(lines), core._WRITE_LINES):
                part = lines[start : start + core._WRITE_LINES]
                written += output.write(("\n".join(part) + "\n").encode("utf-8"))
        if repeats is not None:
            dropped[0] += repeats.dropped
            dropped[1] += repeats.dropped_before
            dropped[2] += repeats.dropped_moved
    while pool.pending:
        write_next()
    report.user_lookups_after = lookups.total()
    report.bytes_written = written
    if before is not None:
        report.rows_duplicate_dropped = dropped[0]
        report.rows_written -= dropped[0]
        report.rows_hidden_from_analytics -= dropped[1]
        report.rows_time_clamped -= dropped[2]
