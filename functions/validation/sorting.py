"""Group rows by user, each user's events in time order, in bounded memory.

Choice: hash partitioning rather than a classic external merge sort. Every kept row becomes a
record ``(bucket, userId, seconds, line)`` where ``bucket`` is a stable hash (CRC-32) of the
user. Records are buffered in memory per bucket; when the buffer passes ``budget_bytes`` all
buckets are appended to one temporary file (``marshal``, C speed). At the end each bucket is
read back alone and sorted in memory by (userId, seconds) with stable C sorts, so equal keys
keep their input order (the row number is the implicit last key). A merge sort would need a
Python-level heap merge touching every row; here Python never compares rows one by one, and
memory holds one bucket, about ``1/NUM_BUCKETS`` of the file. A bucket that still exceeds the
budget (files of many gigabytes, or one enormous user) falls back to sorted runs merged with
``heapq.merge``, so memory stays bounded whatever the input.

The output order is therefore: bucket, then userId, then time, then input order. It does not
depend on whether anything was spilled, so a file validated again comes out byte-identical.
"""

from __future__ import annotations

import heapq
import marshal
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import BinaryIO

Record = tuple[int, str, float, str]

NUM_BUCKETS = 256
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
#: Rough bytes a record costs besides its line text (tuple, float, int, str headers).
RECORD_OVERHEAD = 200
_MERGE_PIECE = 4096

_by_seconds = itemgetter(2)
_by_user = itemgetter(1)
_by_user_seconds = itemgetter(1, 2)


def bucket_of(user: str) -> int:
    """Stable across processes (unlike ``hash``), so every run orders users the same way."""
    return zlib.crc32(user.encode("utf-8")) & (NUM_BUCKETS - 1)


def buckets_of(users: list[str]) -> list[int]:
    """``bucket_of`` for many users at C speed."""
    mask = NUM_BUCKETS - 1
    return [crc & mask for crc in map(zlib.crc32, map(str.encode, users))]


def sort_records(records: list[Record]) -> None:
    """Sort one bucket in place by (userId, seconds), stable so input order breaks ties."""
    records.sort(key=_by_seconds)
    records.sort(key=_by_user)


def record_bytes(records: list[Record]) -> int:
    """Memory estimate used against the budget."""
    return sum(map(len, map(itemgetter(3), records))) + RECORD_OVERHEAD * len(records)


class UserGrouper:
    """Collects records and gives them back grouped and sorted, spilling past a budget."""

    def __init__(
        self, budget_bytes: int = DEFAULT_BUDGET_BYTES, temp_dir: str | None = None
    ) -> None:
        self._budget = budget_bytes
        self._temp_dir = temp_dir
        self._buffers: list[list[Record]] = [[] for _ in range(NUM_BUCKETS)]
        self._buffered = 0
        self._spill: BinaryIO | None = None
        self._pieces: list[list[int]] = [[] for _ in range(NUM_BUCKETS)]
        self._bucket_bytes = [0] * NUM_BUCKETS
        self.spilled_bytes = 0

    def add(self, records: Iterable[Record], size: int) -> None:
        """Add records (in input order); ``size`` is their estimated memory in bytes."""
        buffers = self._buffers
        for record in records:
            buffers[record[0]].append(record)
        self._buffered += size
        if self._buffered > self._budget:
            self._flush()

    def _flush(self) -> None:
        if self._spill is None:
            # Closed in close(); a context manager cannot span add() calls.
            self._spill = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="lp-validate-", dir=self._temp_dir
            )
        spill = self._spill
        for bucket, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            self._pieces[bucket].append(spill.tell())
            self._bucket_bytes[bucket] += record_bytes(buffer)
            marshal.dump(buffer, spill)
            self._buffers[bucket] = []
        self._buffered = 0
        self.spilled_bytes = spill.tell()

    def _load(self, offset: int) -> list[Record]:
        assert self._spill is not None
        self._spill.seek(offset)
        records: list[Record] = marshal.load(self._spill)
        return records

    def sorted_batches(self) -> Iterator[list[Record]]:
        """Yield lists of records in final order (one or more lists per bucket)."""
        if self._spill is not None and self._buffered:
            self._flush()
        for bucket in range(NUM_BUCKETS):
            if self._spill is None:
                records = self._buffers[bucket]
                self._buffers[bucket] = []
                sort_records(records)
                if records:
                    yield records
            elif self._bucket_bytes[bucket] <= self._budget:
                records = []
                for offset in self._pieces[bucket]:
                    records.extend(self._load(offset))
                sort_records(records)
                if records:
                    yield records
            else:
                yield from self._merge_bucket(bucket)

    def _merge_bucket(self, bucket: int) -> Iterator[list[Record]]:
        """Sort an oversized bucket as runs of at most the budget, then merge them."""
        assert self._spill is not None
        # Closed in the finally below, after the generator has been drained.
        runs = tempfile.TemporaryFile(prefix="lp-runs-", dir=self._temp_dir)  # noqa: SIM115
        run_pieces: list[list[int]] = []
        pieces = self._pieces[bucket]
        index = 0
        while index < len(pieces):
            run: list[Record] = []
            size = 0
            while index < len(pieces) and (not run or size <= self._budget):
                part = self._load(pieces[index])
                size += record_bytes(part)
                run.extend(part)
                index += 1
            sort_records(run)
            offsets = []
            runs.seek(0, 2)
            for start in range(0, len(run), _MERGE_PIECE):
                offsets.append(runs.tell())
                marshal.dump(run[start : start + _MERGE_PIECE], runs)
            run_pieces.append(offsets)
            del run

        def read_run(offsets: list[int]) -> Iterator[Record]:
            for offset in offsets:
                runs.seek(offset)
                piece: list[Record] = marshal.load(runs)
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
