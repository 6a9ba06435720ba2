"""What the worker processes of the parallel path run: the reference code, chunk by chunk.

Why a worker runs the sequential path's own ``ChunkChecker`` and ``Rows`` sorting rather than
a second implementation of the rules: the output must be byte-identical, and the only sure way
is the same code on the same chunks. What a chunk changes besides its kept rows (report
counts, listed rejections, rejected-rows CSV text, blank rows, event names) is collected per
chunk and handed back, so the main process can apply it in input order exactly as the
sequential path would have.
"""

from __future__ import annotations

import io
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import ne

from functions.validation.columns import ColumnPlan
from functions.validation.duplicates import RepeatFilter
from functions.validation.fastrules import FastChunkChecker
from functions.validation.options import ValidationOptions
from functions.validation.rejected import RejectedWriter
from functions.validation.report import ValidationReport
from functions.validation.rules import ChunkChecker
from functions.validation.scanning import Step, build_chunk
from functions.validation.sorting import RECORD_OVERHEAD, dump_rows, load_rows


@dataclass
class ChunkEffects:
    """What one checked chunk changes besides its kept rows, to apply in input order.

    ``users``: the kept users in input order joined by line feeds (a kept userId holds no
    control character), for the billed-lookups count.
    """

    report: ValidationReport
    rejected_text: str
    rows_blank: int
    rows_kept_old: int
    events: set[str]
    users: str


@dataclass
class CheckResult:
    """Several consecutive chunks: each one's effects, and all their kept rows dealt to
    buckets: (bucket, slice in ``dump_rows`` format, memory estimate), in bucket order.

    Why several: a slice per bucket per task, and zlib's set-up per slice is what costs,
    so bigger tasks mean fewer, bigger (and better compressed) slices.
    """

    effects: list[ChunkEffects] = field(default_factory=list)
    slices: list[tuple[int, bytes, int]] = field(default_factory=list)


@dataclass
class BucketResult:
    """One bucket sorted and written: its output bytes and what the totals need."""

    data: bytes
    rows: int
    #: Positions (from 1) where a new user starts in this bucket's output.
    user_starts: bytes
    dropped: int = 0
    dropped_before: int = 0
    dropped_moved: int = 0


#: zlib level of the slices (None: not compressed). Measured on the 93 MB benchmark file:
#: level 1 takes the peak of RSS plus temporary bytes from 246 to 170 MB (the slices from
#: about 1.0 to 0.3 times the input) for ~15% more worker CPU time.
SLICE_LEVEL: int | None = 1
_STATE: dict[str, object] = {}


def start(plan: ColumnPlan, options: ValidationOptions, header: list[str]) -> None:
    """Process initializer: one checker per worker, as the sequential path has one per run."""
    buffer = io.StringIO()
    writer = RejectedWriter(buffer, header)
    checker = FastChunkChecker(plan, options, ValidationReport(), writer)
    _STATE.update(checker=checker, buffer=buffer, writer=writer)


def check(batch: list[tuple[list[Step], int]]) -> CheckResult:
    """Build each chunk from its recipe (steps, first row number) and apply the rules, as
    ``core._read_rows`` does; then deal the kept rows of the batch to their buckets."""
    checker = _STATE["checker"]
    buffer = _STATE["buffer"]
    assert isinstance(checker, ChunkChecker) and isinstance(buffer, io.StringIO)
    result = CheckResult()
    buckets: list[int] = []
    seconds: list[float] = []
    lines: list[str] = []
    origins: list[float] = []
    moved = False
    for steps, first_row in batch:
        report = ValidationReport()
        buffer.seek(0)
        buffer.truncate()
        checker._report = report
        checker.rows_blank = 0
        checker.rows_kept_old = 0
        checker.event_names = set()
        checker.event_names_capped = False
        kept = checker.check_chunk(build_chunk(steps, checker.width), first_row)
        effects = ChunkEffects(
            report=report,
            rejected_text=buffer.getvalue(),
            rows_blank=checker.rows_blank,
            rows_kept_old=checker.rows_kept_old,
            events=checker.event_names,
            users="\n".join(kept.users),
        )
        result.effects.append(effects)
        buckets += kept.buckets
        seconds += kept.seconds
        lines += kept.lines
        origins += kept.origins
        moved = moved or kept.origins is not kept.seconds
    if lines:
        result.slices = _deal(buckets, seconds, lines, origins if moved else None)
    return result


def _deal(
    buckets: list[int],
    seconds: list[float],
    lines: list[str],
    origins: list[float] | None,
) -> list[tuple[int, bytes, int]]:
    """The dealing of ``UserGrouper.add_rows``: one stable sort of row indexes by bucket,
    then one slice per bucket, in input order within it."""
    order = sorted(range(len(buckets)), key=buckets.__getitem__)
    ordered = sorted(buckets)
    seconds = list(map(seconds.__getitem__, order))
    lines = list(map(lines.__getitem__, order))
    if origins is not None:
        origins = list(map(origins.__getitem__, order))
    slices = []
    start = 0
    while start < len(ordered):
        bucket = ordered[start]
        end = bisect_right(ordered, bucket, start)
        part = lines[start:end]
        data = dump_rows(
            None,  # each user is the first field of its line: sorting.users_of
            seconds[start:end],
            part,
            None if origins is None else origins[start:end],
            SLICE_LEVEL,
        )
        slices.append((bucket, data, sum(map(len, part)) + RECORD_OVERHEAD * len(part)))
        start = end
    return slices


def finish(pieces: list[bytes], before: float | None) -> BucketResult:
    """Sort one bucket's slices (input order) as ``UserGrouper.sorted_batches`` does.

    ``before``: the analytics limit when repeats are dropped (duplicate_rows=drop), else
    None. A fresh ``RepeatFilter`` per bucket finds what the run-long one finds: its memory
    of the last run only matters when the next batch starts with the same user, and two
    buckets never share a user.
    """
    whole = load_rows(pieces[0])
    for piece in pieces[1:]:
        rows = load_rows(piece)
        whole.extend(rows.users, rows.seconds, rows.lines, rows.origins)
    done = whole.sorted_by_user()
    del whole
    users, lines = done.users, done.lines
    repeats = None
    if before is not None:
        repeats = RepeatFilter(before)
        users, lines = repeats.filter(users, done.seconds, lines, done.origins)
    data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    result = BucketResult(data, len(lines), user_starts(users))
    if repeats is not None:
        result.dropped = repeats.dropped
        result.dropped_before = repeats.dropped_before
        result.dropped_moved = repeats.dropped_moved
    return result


def user_starts(users: list[str]) -> bytes:
    """Positions p >= 1 where ``users[p] != users[p - 1]``, packed as array('q')."""
    changes = map(ne, islice(users, 1, None), users)
    return array("q", compress(range(1, len(users)), changes)).tobytes()
