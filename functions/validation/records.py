"""Read a CSV file we wrote ourselves record by record, keeping its exact bytes."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO


def iter_records(stream: BinaryIO) -> Iterator[bytes]:
    """Yield each CSV record's exact bytes, line ending included.

    A record ends at a newline outside quotes. Counting ``"`` is enough for files written by
    ``csv.writer`` (quotes only appear doubled inside quoted fields), and it keeps the bytes
    untouched, which splitting relies on to produce parts whose concatenation is the input.
    """
    pending: list[bytes] = []
    quotes = 0
    for line in stream:
        quotes += line.count(b'"')
        pending.append(line)
        if quotes % 2 == 0:
            yield b"".join(pending)
            pending.clear()
            quotes = 0
    if pending:
        yield b"".join(pending)


def _first_field(record: bytes, index: int) -> str:
    row = next(csv.reader([record.decode("utf-8")]), [])
    return row[index] if index < len(row) else ""


def iter_user_groups(
    stream: BinaryIO,
) -> tuple[bytes, Iterator[tuple[str, bytes, int]]]:
    """Return the header bytes and an iterator of (userId, rows' bytes, row count) per user run."""
    records = iter_records(stream)
    header = next(records, b"")
    names = next(csv.reader([header.decode("utf-8")]), [])
    if "userId" not in names:
        raise ValueError(f"not a normalised file: no userId column in header {names!r}")
    index = names.index("userId")

    def groups() -> Iterator[tuple[str, bytes, int]]:
        user: str | None = None
        chunk: list[bytes] = []
        for record in records:
            if not record.strip():
                continue
            this = _first_field(record, index)
            if user is not None and this != user:
                yield user, b"".join(chunk), len(chunk)
                chunk = []
            user = this
            chunk.append(record)
        if user is not None:
            yield user, b"".join(chunk), len(chunk)

    return header, groups()
