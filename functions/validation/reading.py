"""Cut the decoded text into chunks of CSV records, fast where the text is plain.

Why not ``csv.reader`` alone: parsing every line in C still builds a list per row and then the
validator has to turn rows into columns. In exported files most lines hold no quote, and for
such a line a record is exactly the line and a field is exactly the text between two commas.
A run of such lines is cut with a few ``str.split`` calls and its columns are taken with
slices, all at C speed, with no Python step per row.

Within a chunk, the lines before the next ``"`` are taken that way when they are plain: no
carriage return other than one just before a line feed and no line as long as the CSV field
size limit (else ``csv.reader`` reads the rest of the chunk). Lines with the header's number of
commas become columns; others (blank or misshapen rows) are set aside exactly as
``csv.reader`` would have split them. The line holding a quote, and the end of the input
(a last line without line feed, the text before an invalid byte), go to ``csv.reader``, which
reads whole records, so it may take more lines for a quoted line break, and stops at the end
of a record, where plain lines can be taken again. Where quotes are dense the reader is asked
for longer and longer runs of records. Chunk boundaries (a fixed number of records), row and
line numbers are the same whichever way a record is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import repeat

from functions.validation.decoding import LineSource

_count = str.count
_len = len
_FIRST_WINDOW = 1024
_LAST_WINDOW = 1 << 20


class ChunkReader:
    """Reads records from a :class:`LineSource`, a chunk of ``size`` records at a time."""

    def __init__(self, source: LineSource) -> None:
        self._source = source
        self._pieces = source.pieces()
        self._text = ""
        self._pos = 0
        self._exhausted = False
        self._lines_before = 0
        self._reader: csv.Reader | None = None  # type: ignore[name-defined]
        #: True once the record holding the first invalid byte has been read.
        self.problem_seen = False

    @property
    def line_num(self) -> int:
        """Physical lines read so far, as ``csv.reader.line_num`` would count them."""
        current = self._reader.line_num if self._reader is not None else 0
        return self._lines_before + current

    def _pull(self) -> bool:
        """Append the next decoded piece to the pending text; False at the end of input."""
        if self._exhausted:
            return False
        piece = next(self._pieces, None)
        if piece is None:
            self._exhausted = True
            return False
        if self._pos:
            self._text = self._text[self._pos :]
            self._pos = 0
        self._text = self._text + piece if self._text else piece
        return True

    def read_chunk(self, size: int, width: int) -> Chunk:
        """The next ``size`` records (fewer only at the end of input), sorted by width.

        Plain stretches of lines are cut with ``str.split``; a line holding a quote or any
        other irregularity is read with ``csv.reader``, which may take further lines for a
        quoted line break. Raises ``csv.Error`` like the reader; ``line_num`` then tells where.
        After a chunk, check ``problem_seen``: the chunk then ends with the invalid byte's row.
        """
        chunk = Chunk(width)
        limit = csv.field_size_limit()
        run = 1
        while chunk.records < size and not self.problem_seen:
            need = size - chunk.records
            text, pos = self._text, self._pos
            quote = text.find('"', pos)
            end = text.rfind("\n", pos, len(text) if quote < 0 else quote) + 1
            if end > pos:
                run = 1
                # Whole lines without a quote: split them, unless something else is odd.
                lines = text.count("\n", pos, end)
                segment = text[pos:end]
                if lines > need:
                    parts = segment.split("\n", need)
                    lines = need
                    end -= len(parts.pop())
                else:
                    parts = segment.split("\n")
                    parts.pop()
                del segment
                returns = text.count("\r", pos, end)
                if (returns and returns != text.count("\r\n", pos, end)) or (
                    end - pos >= limit and max(map(_len, parts)) >= limit
                ):
                    # A bare carriage return or a huge line: leave it all to csv.reader.
                    chunk.add_rows(self.rows(need))
                    continue
                self._pos = end
                self._lines_before += lines
                chunk.add_lines(parts, returns > 0)
                continue
            if quote >= 0:
                # The line holding the quote starts a record that csv.reader must read; where
                # quotes are dense, let it read longer and longer runs of records.
                chunk.add_rows(self.rows(min(run, need)))
                run = min(run * 2, size)
                continue
            if not self._pull():
                # The end of input, maybe without a final line break.
                chunk.add_rows(self.rows(need))
                break
        return chunk

    def rows(self, size: int) -> list[list[str]]:
        """Up to ``size`` records parsed by ``csv.reader`` (fewer only at the end of input).

        Raises ``csv.Error`` like the reader; ``line_num`` then tells where.
        """
        reader = csv.reader(self._lines())
        self._reader = reader
        rows: list[list[str]] = []
        for row in reader:
            rows.append(row)
            if len(rows) >= size:
                break
        self._lines_before += reader.line_num
        self._reader = None
        return rows

    def _lines(self) -> Iterator[str]:
        """Lines of the pending text (then of further pieces), line endings kept.

        Cut by ``io.StringIO(text, newline="")`` as the original line source did, a window
        at a time: windows end just after a ``"\\n"`` and double in size while the reader
        keeps asking, so that a reader stopping after one record wastes little work.
        """
        window = _FIRST_WINDOW
        while True:
            text, pos = self._text, self._pos
            size = len(text)
            if pos >= size:
                self._text = ""
                self._pos = 0
                if not self._pull():
                    return
                continue
            stop = text.find("\n", pos + window) + 1 or size
            window = min(window * 2, _LAST_WINDOW)
            lines = io.StringIO(text[pos:stop], newline="").readlines()
            last = lines.pop()
            for line in lines:
                pos += len(line)
                self._pos = pos
                yield line
            self._pos = stop
            if stop >= size and self._source.problem is not None:
                # Nothing follows the piece that ends with the invalid byte's sentinel.
                self.problem_seen = True
            yield last


class Chunk:
    """Records of one chunk, in input order, as columns of the rows of the right width.

    ``dropped`` holds, in order, the records of another width (offset in the chunk, fields):
    blank lines and misshapen rows. ``offsets`` gives each kept row's offset in the chunk when
    some record was dropped (else None: kept row i is record i). ``quoted`` lists the kept
    rows read by ``csv.reader``: only their fields may hold commas, quotes or line breaks, so
    only they may need quoting on output.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.records = 0
        self.count = 0
        self.dropped: list[tuple[int, list[str]]] = []
        self.quoted: list[int] = []
        self._offsets: list[int] = []
        self._blocks: list[list[list[str]]] = []
        self._rows: list[list[str]] = []

    @property
    def offsets(self) -> list[int] | None:
        """Offset in the chunk of each kept row, or None when no record was dropped."""
        return self._offsets if self.dropped else None

    def add_lines(self, lines: list[str], returns: bool) -> None:
        """Plain lines: no quote, each a record; ``returns``: some end with ``"\\r"``."""
        width = self.width
        counts = set(map(_count, lines, repeat(",")))
        if counts != {width - 1}:
            for line in lines:
                self._add_row(line.rstrip("\r").split(","), quoted=False)
            return
        self._close_rows()
        text = ",".join(lines)
        if returns:
            # Each "\r" ends a line (bare ones never reach here): drop them all at once.
            text = text.replace("\r", "")
        fields = text.split(",")
        del text
        columns = [fields[index::width] for index in range(width)]
        number = len(lines)
        self._blocks.append(columns)
        self._offsets += range(self.records, self.records + number)
        self.records += number
        self.count += number

    def add_rows(self, rows: list[list[str]]) -> None:
        """Records parsed by ``csv.reader``."""
        if set(map(_len, rows)) == {self.width}:
            number = len(rows)
            self.quoted += range(self.count, self.count + number)
            self._rows += rows
            self._offsets += range(self.records, self.records + number)
            self.count += number
            self.records += number
            return
        for row in rows:
            self._add_row(row, quoted=True)

    def _add_row(self, row: list[str], *, quoted: bool) -> None:
        if len(row) == self.width:
            if quoted:
                self.quoted.append(self.count)
            self._rows.append(row)
            self._offsets.append(self.records)
            self.count += 1
        else:
            self.dropped.append((self.records, row))
        self.records += 1

    def _close_rows(self) -> None:
        if self._rows:
            self._blocks.append([list(column) for column in zip(*self._rows, strict=True)])
            self._rows = []

    def columns(self) -> list[list[str]]:
        """The kept rows as ``width`` columns."""
        self._close_rows()
        blocks = self._blocks
        if len(blocks) == 1:
            return blocks[0]
        columns: list[list[str]] = [[] for _ in range(self.width)]
        for block in blocks:
            for column, part in zip(columns, block, strict=True):
                column.extend(part)
        return columns
