"""Whole lines of the input a block at a time, and whether each block is plain.

A block is *plain* when splitting every line at every comma reads it exactly as the reference
(``reading``: ``str.split`` for plain lines, ``csv.reader`` for the rest) does, once the lines
holding a quote are taken out (``split_quoted``: ``csv.reader`` reads them, one line each): no
NUL, every carriage return just before a line feed, no empty line,
valid UTF-8, and exactly ``width - 1`` commas on every line. The last condition is checked
in two halves: the block's commas total ``(width - 1) x lines`` here, and the native parser
refuses any line with more fields than the header; together no line can have fewer.
Anything else makes the caller hand the whole file to the reference path.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import BinaryIO

#: Bytes read at a time (a block ends at the last line feed within it). Polars needs many
#: times a block in working memory: 3 MB keeps a 93 MB file under 256 MB in all (RSS and
#: spill), 4 MB was no faster and took 30 MB more, 2 MB was slower.
BLOCK_BYTES = 3 << 20
BOM = codecs.BOM_UTF8


def column_names(width: int) -> list[str]:
    """The native columns of a block: ``c0`` .. ``c{width-1}``, whatever the header says."""
    return [f"c{index}" for index in range(width)]


class NotPlain(Exception):
    """The input holds something only the reference path reads exactly (named in the text)."""


class Blocks:
    """The header line, then the data lines of ``source`` in blocks ending with ``"\\n"``.

    The last block may end without a line feed (a file whose last line has none).
    ``bytes_read`` counts every byte taken from ``source``, byte order mark included.
    """

    def __init__(self, source: BinaryIO, block_bytes: int | None = None) -> None:
        self._source = source
        self._block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        self._carry = b""
        self.bytes_read = 0
        self.had_bom = False
        #: A line longer than this cannot be plain (see ``limit_lines``); None: no limit yet.
        self.line_cap: int | None = None

    def limit_lines(self, width: int, field_limit: int) -> None:
        """Give up on a line longer than ``width`` fields under the CSV field size limit could
        be (4 bytes a character), rather than gather a huge line block after block."""
        self.line_cap = width * (4 * field_limit + 1)

    def _read(self) -> bytes:
        data = self._source.read(self._block_bytes)
        self.bytes_read += len(data)
        return data

    def header(self) -> bytes:
        """The first line without its line ending; NotPlain when it is not a plain one."""
        data = self._read()
        while len(data) < len(BOM):
            more = self._read()
            if not more:
                break
            data += more
        if data.startswith(BOM):
            self.had_bom = True
            data = data[len(BOM) :]
        end = data.find(b"\n")
        while end < 0:
            more = self._read()
            if not more:
                end = len(data)  # a header and nothing else
                break
            data += more
            end = data.find(b"\n")
        line, self._carry = data[:end], data[end + 1 :]
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip() or b'"' in line or b"\r" in line or b"\x00" in line:
            raise NotPlain("the header line is blank or not plain")
        return line

    def __iter__(self) -> Iterator[bytes]:
        """Blocks of whole data lines; the last may lack its final line feed."""
        carry = self._carry
        self._carry = b""
        while True:
            data = self._read()
            if not data:
                if carry:
                    yield carry
                return
            data = carry + data if carry else data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if self.line_cap is not None and len(data) > self.line_cap:
                    raise NotPlain("a line longer than its fields can be")
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut] if carry else data


def check_plain(block: bytes) -> None:
    """NotPlain unless ``block`` is plain but for its field counts (checked after parsing:
    an empty line, or one with fewer fields, makes the commas fall short of
    ``(width - 1) x rows`` unless another line has more fields, which the parser refuses).

    Line endings may be ``"\r\n"``: the native parser drops a carriage return before a
    line feed, as ``str.split`` after the reference's ``replace("\r", "")`` does.
    """
    if b'"' in block or b"\x00" in block:
        raise NotPlain("a quote or NUL character")
    returns = block.count(b"\r")
    if returns and returns != block.count(b"\r\n"):
        raise NotPlain("a carriage return not followed by a line feed")
    if not block.isascii():
        try:
            codecs.decode(block, "utf-8")
        except UnicodeDecodeError:
            raise NotPlain("bytes that are not UTF-8") from None


def split_quoted(block: bytes, width: int) -> tuple[bytes, list[int], list[list[str]]]:
    """Take the lines holding a quote out of ``block``, read by ``csv.reader`` as the
    reference reads them: (the other lines, the index of each taken line, its fields).

    Each taken line must be one whole record of ``width`` fields (no line break inside a
    quoted field, no carriage return but the last, no NUL, valid UTF-8): else NotPlain.
    """
    pieces: list[bytes] = []
    positions: list[int] = []
    rows: list[list[str]] = []
    plain_from = counted_to = line = 0
    quote = block.find(b'"')
    while quote >= 0:
        start = block.rfind(b"\n", 0, quote) + 1
        end = block.find(b"\n", quote)
        end = len(block) if end < 0 else end + 1
        line += block.count(b"\n", counted_to, start)
        pieces.append(block[plain_from:start])
        positions.append(line)
        rows.append(_record(block[start:end], width))
        line += 1
        counted_to = plain_from = end
        quote = block.find(b'"', end)
    pieces.append(block[plain_from:])
    return b"".join(pieces), positions, rows


def _record(raw: bytes, width: int) -> list[str]:
    """The fields of one line holding a quote, as ``csv.reader`` reads them."""
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    raw = raw[:-1] if raw.endswith(b"\r") else raw
    if b"\r" in raw or b"\x00" in raw:
        raise NotPlain("a carriage return or NUL in a line holding a quote")
    try:
        text = raw.decode("utf-8")
        reader = csv.reader(iter([text + "\n", "x\n"]))
        row = next(reader)
    except (UnicodeDecodeError, csv.Error, StopIteration):
        raise NotPlain("a line holding a quote that is not one whole record") from None
    if reader.line_num != 1 or len(row) != width:
        raise NotPlain("a quoted line break, or a quoted line with another number of fields")
    return row
