"""The companion CSV of rejected rows: row number, column, reason, then the row as read."""

from __future__ import annotations

import csv
import io


class RejectedWriter:
    """Writes the companion CSV: row number, column, reason, then the original fields."""

    def __init__(self, stream: io.TextIOBase, header: list[str]) -> None:
        # CRLF: Python 3.11's writer quotes a field holding "\r" only if "\r" is in the
        # line terminator; the companion file is for spreadsheets anyway.
        self._writer = csv.writer(stream, lineterminator="\r\n")
        self._writer.writerow(["row", "column", "reason", *header])

    def write(self, row: int, column: str, reason: str, fields: list[str]) -> None:
        """One rejected row, as it was read."""
        self._writer.writerow([row, column, reason, *fields])
