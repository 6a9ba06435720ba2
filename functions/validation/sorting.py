"""Group rows by user, each user's events in time order, in bounded memory.

Choice: hash partitioning rather than a classic external merge sort. Every kept row has a
``bucket``, a stable hash (CRC-32) of its user. Rows are buffered in memory as four parallel
lists (bucket, userId, seconds, line), in input order; when the buffer passes
``budget_bytes`` it is ordered by bucket with one stable C sort of row indexes, and each
bucket's slice is appended to one temporary file (``marshal`` of three flat lists and an
array of seconds: C speed, no tuple per row). At the end each bucket's slices are read back
alone and sorted by (userId, seconds) with stable C sorts, so equal keys keep their input
order (the row number is the implicit last key). A merge sort would need a Python-level heap
merge touching every row; here Python never compares rows one by one, and memory holds one
bucket, about ``1/NUM_BUCKETS`` of the file. A bucket that still exceeds the budget (files
of many gigabytes, or one enormous user) falls back to sorted runs merged with
``heapq.merge``, so memory stays bounded whatever the input.

The output order is therefore: bucket, then userId, then time, then input order. It does not
depend on whether anything was spilled, so a file validated again comes out byte-identical.
In that order exact repeats of a row are neighbours within one user's rows at one instant,
which is where ``duplicates`` drops them, batch by batch, without a set of the whole file.
"""

from __future__ import annotations

import csv
import heapq
import marshal
import tempfile
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from itertools import compress, repeat
from operator import itemgetter, methodcaller
from typing import BinaryIO

from functions.validation.duplicates import RepeatFilter

#: (bucket, userId, seconds, line, time as read before an old event was moved).
Record = tuple[int, str, float, str, float]

NUM_BUCKETS = 256
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
#: Rough bytes a record costs besides its line text (tuple, float, int, str headers).
RECORD_OVERHEAD = 200
_MERGE_PIECE = 4096
#: First byte of a zlib stream with the default window (0x78).
_ZLIB_FIRST_BYTE = b"x"

_first = itemgetter(0)
_quoted = methodcaller("startswith", '"')
_by_user = itemgetter(1)
_by_seconds = itemgetter(2)
_by_line = itemgetter(3)
_by_user_seconds = itemgetter(1, 2)
_by_origin = itemgetter(4)


def open_spill(temp_dir: str | None) -> BinaryIO:
    """A new spill file (unlinked at once: ``/tmp`` is memory in Cloud Functions). The caller
    closes it: a context manager cannot span the calls that fill and read it."""
    return tempfile.TemporaryFile(prefix="lp-validate-", dir=temp_dir)


def buckets_of(users: list[str]) -> list[int]:
    """The bucket of each user, at C speed: CRC-32 of its UTF-8 bytes, stable across
    processes (unlike ``hash``), so every run orders users the same way."""
    mask = NUM_BUCKETS - 1
    return [crc & mask for crc in map(zlib.crc32, map(str.encode, users))]


def dump_rows(
    users: list[str] | None,
    seconds: list[float],
    lines: list[str],
    origins: list[float] | None,
    level: int | None = None,
) -> bytes:
    """One spilled slice: marshal (version 2: no back-references, which cost a hash lookup
    per string) of three flat lists and the seconds packed as doubles; zlib-compressed at
    ``level`` when given. ``users`` None: each row's user is the first field of its line
    (the parallel path stores them so, a quarter smaller: ``/tmp`` is memory)."""
    packed = None if origins is None else array("d", origins).tobytes()
    data = marshal.dumps((users, array("d", seconds).tobytes(), lines, packed), 2)
    return data if level is None else zlib.compress(data, level)


def load_rows(data: bytes) -> Rows:
    """The rows of a slice written by ``dump_rows``, compressed or not."""
    if data[:1] == _ZLIB_FIRST_BYTE:  # a marshalled tuple starts with "(" or ")"
        data = zlib.decompress(data)
    users, packed, lines, packed_origins = marshal.loads(data)
    if users is None:
        users = users_of(lines)
    seconds = array("d")
    seconds.frombytes(packed)
    origins = None
    if packed_origins is not None:
        moved = array("d")
        moved.frombytes(packed_origins)
        origins = moved.tolist()
    return Rows(users, seconds.tolist(), lines, origins)


def users_of(lines: list[str]) -> list[str]:
    """The userId of each output line: its first field (userId is always the first column).

    A field is quoted only when it holds a comma, quote or line break, so a line that does
    not start with a quote has its user before the first comma; the others are parsed.
    """
    users = list(map(_first, map(str.partition, lines, repeat(","))))
    if any(map(_quoted, lines)):
        for index in compress(range(len(lines)), map(_quoted, lines)):
            users[index] = next(csv.reader([lines[index]]))[0]
    return users


def sort_records(records: list[Record]) -> None:
    """Sort one bucket in place by (userId, seconds), stable so input order breaks ties."""
    records.sort(key=_by_seconds)
    records.sort(key=_by_user)


def record_bytes(records: list[Record]) -> int:
    """Memory estimate used against the budget."""
    return sum(map(len, map(_by_line, records))) + RECORD_OVERHEAD * len(records)


def _order(keys: list[float] | list[str] | list[int], order: list[int] | None) -> list[int]:
    """Row indexes stably sorted by ``keys`` (after an earlier order, when given)."""
    if order is None:
        return sorted(range(len(keys)), key=keys.__getitem__)
    order.sort(key=keys.__getitem__)
    return order


class Rows:
    """Parallel lists of rows: userId, seconds and line (bucket implied or separate).

    ``origins`` holds each row's time as read when some row was moved in time (old events);
    None, by far the common case, means "the same as ``seconds``" and costs nothing.
    """

    __slots__ = ("lines", "origins", "seconds", "users")

    def __init__(
        self,
        users: list[str],
        seconds: list[float],
        lines: list[str],
        origins: list[float] | None = None,
    ) -> None:
        self.users = users
        self.seconds = seconds
        self.lines = lines
        self.origins = origins

    def extend(
        self, users: list[str], seconds: list[float], lines: list[str], origins: list[float] | None
    ) -> None:
        """Append rows (``origins`` None: their times were not moved)."""
        if origins is not None and self.origins is None:
            self.origins = list(self.seconds)
        self.users += users
        self.seconds += seconds
        self.lines += lines
        if self.origins is not None:
            self.origins += seconds if origins is None else origins

    def sorted_by_user(self) -> Rows:
        """A copy in (userId, seconds) order, input order on ties."""
        order = _order(self.users, _order(self.seconds, None))
        return Rows(
            list(map(self.users.__getitem__, order)),
            list(map(self.seconds.__getitem__, order)),
            list(map(self.lines.__getitem__, order)),
            None if self.origins is None else list(map(self.origins.__getitem__, order)),
        )


class UserGrouper:
    """Collects rows and gives them back grouped and sorted, spilling past a budget."""

    def __init__(self, budget_bytes: int | None = None, temp_dir: str | None = None) -> None:
        # Read at call time so that tests can lower DEFAULT_BUDGET_BYTES to force spilling.
        self._budget = DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes
        self._temp_dir = temp_dir
        self._buffers = [Rows([], [], []) for _ in range(NUM_BUCKETS)]
        self._buffered = 0
        self._spill: BinaryIO | None = None
        #: Per bucket, (offset, length) of each slice in the spill file.
        self._pieces: list[list[tuple[int, int]]] = [[] for _ in range(NUM_BUCKETS)]
        self._bucket_bytes = [0] * NUM_BUCKETS
        self.spilled_bytes = 0

    def add_rows(
        self,
        buckets: list[int],
        users: list[str],
        seconds: list[float],
        lines: list[str],
        size: int,
        *,
        origins: list[float] | None = None,
    ) -> None:
        """Add rows (in input order); ``size`` is their estimated memory in bytes.

        ``origins``: each row's time as read, when it differs from ``seconds`` for some row
        (an old event moved); the same list as ``seconds``, or None, otherwise.

        The rows are dealt to their buckets here, a chunk at a time, while they are still
        in the processor's cache: one stable C sort of row indexes by bucket, then a slice
        per bucket.
        """
        order = sorted(range(len(buckets)), key=buckets.__getitem__)
        ordered = sorted(buckets)
        users = list(map(users.__getitem__, order))
        seconds = list(map(seconds.__getitem__, order))
        lines = list(map(lines.__getitem__, order))
        moved = None
        if origins is not None and origins is not seconds:
            moved = list(map(origins.__getitem__, order))
        buffers = self._buffers
        start = 0
        count = len(ordered)
        while start < count:
            bucket = ordered[start]
            end = bisect_right(ordered, bucket, start)
            buffer = buffers[bucket]
            if moved is not None or buffer.origins is not None:
                buffer.extend(
                    users[start:end],
                    seconds[start:end],
                    lines[start:end],
                    None if moved is None else moved[start:end],
                )
            else:
                buffer.users += users[start:end]
                buffer.seconds += seconds[start:end]
                buffer.lines += lines[start:end]
            start = end
        self._buffered += size
        if self._buffered > self._budget:
            self._flush()

    def _flush(self) -> None:
        if self._spill is None:
            self._spill = open_spill(self._temp_dir)
        spill = self._spill
        for bucket, buffer in enumerate(self._buffers):
            if not buffer.lines:
                continue
            data = dump_rows(buffer.users, buffer.seconds, buffer.lines, buffer.origins)
            self._pieces[bucket].append((spill.tell(), len(data)))
            spill.write(data)
            self._bucket_bytes[bucket] += sum(map(len, buffer.lines)) + RECORD_OVERHEAD * len(
                buffer.lines
            )
            self._buffers[bucket] = Rows([], [], [])
        self._buffered = 0
        self.spilled_bytes = spill.tell()

    def _spilled(self) -> BinaryIO:
        """The spill file; only buckets that were spilled are read back from it."""
        if self._spill is None:
            raise RuntimeError("UserGrouper: reading back a spilled bucket, but nothing spilled")
        return self._spill

    def _load(self, piece: tuple[int, int]) -> Rows:
        return load_rows(self.read_piece(piece))

    def read_piece(self, piece: tuple[int, int]) -> bytes:
        """The bytes of one spilled slice (read at once: marshal.load on a file reads it in
        tiny steps)."""
        spill = self._spilled()
        spill.seek(piece[0])
        return spill.read(piece[1])

    def append_piece(self, bucket: int, data: bytes, size: int) -> None:
        """Spill one slice made elsewhere (``dump_rows``; ``size`` its memory estimate).

        The parallel path (``parallel``) builds slices in worker processes and only stores
        them here, in the very format ``_flush`` writes, so every read-back path is shared.
        """
        if self._spill is None:
            self._spill = open_spill(self._temp_dir)
        spill = self._spill
        spill.seek(0, 2)
        self._pieces[bucket].append((spill.tell(), len(data)))
        spill.write(data)
        self._bucket_bytes[bucket] += size
        self.spilled_bytes = spill.tell()

    def pieces_of(self, bucket: int) -> list[tuple[int, int]]:
        """(offset, length) of each spilled slice of ``bucket``, in input order."""
        return list(self._pieces[bucket])

    def merged_batches(
        self, bucket: int, repeats: RepeatFilter | None
    ) -> Iterator[tuple[list[str], list[str]]]:
        """(userIds, lines) of one spilled bucket too big for memory: sorted runs merged."""
        for batch in self._merge_bucket(bucket):
            users, lines = list(map(_by_user, batch)), list(map(_by_line, batch))
            if repeats is not None:
                users, lines = repeats.filter(
                    users, list(map(_by_seconds, batch)), lines, list(map(_by_origin, batch))
                )
            yield users, lines

    def _load_records(self, piece: tuple[int, int], bucket: int) -> list[Record]:
        rows = self._load(piece)
        count = len(rows.users)
        origins = rows.seconds if rows.origins is None else rows.origins
        return list(
            zip(repeat(bucket, count), rows.users, rows.seconds, rows.lines, origins, strict=True)
        )

    def sorted_batches(
        self, repeats: RepeatFilter | None = None
    ) -> Iterator[tuple[list[str], list[str]]]:
        """Yield (userIds, lines) in final order (one or more pairs per bucket).

        With ``repeats``, rows repeating an earlier row exactly are left out (see
        ``duplicates``): in final order they sit in the same run of one user and instant.
        """
        if self._spill is not None and self._buffered:
            self._flush()
        for bucket in range(NUM_BUCKETS):
            if self._spill is None:
                whole = self._buffers[bucket]
                self._buffers[bucket] = Rows([], [], [])
            elif self._bucket_bytes[bucket] <= self._budget:
                pieces = [self._load(piece) for piece in self._pieces[bucket]]
                whole = pieces[0] if pieces else Rows([], [], [])
                for piece in pieces[1:]:
                    whole.extend(piece.users, piece.seconds, piece.lines, piece.origins)
                del pieces
            else:
                yield from self.merged_batches(bucket, repeats)
                continue
            if whole.lines:
                done = whole.sorted_by_user()
                del whole
                if repeats is not None:
                    yield repeats.filter(done.users, done.seconds, done.lines, done.origins)
                else:
                    yield done.users, done.lines

    def _merge_bucket(self, bucket: int) -> Iterator[list[Record]]:
        """Sort an oversized bucket as runs of at most the budget, then merge them."""
        self._spilled()
        # Closed in the finally below, after the generator has been drained.
        runs = tempfile.TemporaryFile(prefix="lp-runs-", dir=self._temp_dir)  # noqa: SIM115
        run_pieces: list[list[tuple[int, int]]] = []
        pieces = self._pieces[bucket]
        index = 0
        while index < len(pieces):
            run: list[Record] = []
            size = 0
            while index < len(pieces) and (not run or size <= self._budget):
                part = self._load_records(pieces[index], bucket)
                size += record_bytes(part)
                run.extend(part)
                index += 1
            sort_records(run)
            offsets = []
            runs.seek(0, 2)
            for start in range(0, len(run), _MERGE_PIECE):
                data = marshal.dumps(run[start : start + _MERGE_PIECE])
                offsets.append((runs.tell(), len(data)))
                runs.write(data)
            run_pieces.append(offsets)
            del run

        def read_run(offsets: list[tuple[int, int]]) -> Iterator[Record]:
            for offset in offsets:
                runs.seek(offset[0])
                piece: list[Record] = marshal.loads(runs.read(offset[1]))
                yield from piece

        batch: list[Record] = []
        try:
            for record in heapq.merge(*map(read_run, run_pieces), key=_by_user_seconds):
                batch.append(record)
                if len(batch) >= _MERGE_PIECE:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            runs.close()

    def close(self) -> None:
        """Remove the spill file."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
