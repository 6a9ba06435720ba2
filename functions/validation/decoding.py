"""Strict UTF-8 decoding of a byte stream into lines, locating the first bad byte.

Why not ``io.TextIOWrapper``: it decodes ahead in chunks, so when it fails nobody knows which
CSV row held the bad byte. Here whole blocks are decoded at C speed and, on the first error,
the valid text before the bad byte is handed on followed by a sentinel character and then
the end of input. The CSV reader therefore finishes exactly the record that holds the bad
byte, so the caller learns its row number by counting records, quoted newlines included.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK_BYTES = 1 << 20
BOM = codecs.BOM_UTF8
#: Appended to the valid text before a bad byte so the reader always closes that record.
SENTINEL = "\ufffd"


@dataclass(frozen=True)
class EncodingProblem:
    """Where the first invalid UTF-8 byte was found (byte offset from the start of the file)."""

    offset: int
    reason: str


class LineSource:
    """The decoded text of ``stream`` (BOM dropped), in pieces of whole lines."""

    def __init__(self, stream: BinaryIO, block_bytes: int | None = None) -> None:
        self._stream = stream
        # Read at call time so that tests can shrink BLOCK_BYTES to exercise block edges.
        self._block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        self.bytes_read = 0
        self.had_bom = False
        self.problem: EncodingProblem | None = None

    def _blocks(self) -> Iterator[bytes]:
        first = b""
        while len(first) < len(BOM):
            more = self._stream.read(self._block_bytes)
            if not more:
                break
            first += more
        self.bytes_read += len(first)
        if first.startswith(BOM):
            self.had_bom = True
            first = first[len(BOM) :]
        if first:
            yield first
        while True:
            block = self._stream.read(self._block_bytes)
            if not block:
                return
            self.bytes_read += len(block)
            yield block

    def pieces(self) -> Iterator[str]:
        """The decoded text, in pieces that each end just after a ``"\n"``.

        Only the last piece may end otherwise, so no line is ever split between two pieces.
        On the first invalid byte, ``problem`` is set *before* the last piece (the
        valid text, then the sentinel) is yielded; nothing follows that piece.
        """
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        consumed = len(BOM) if self.had_bom else 0
        carry = ""
        for block in self._blocks():
            if self.had_bom and consumed == 0:
                consumed = len(BOM)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                yield self._fail_text(carry, error, consumed - pending)
                return
            consumed += len(block)
            text = carry + text if carry else text
            cut = text.rfind("\n") + 1
            carry = text[cut:]
            if cut == len(text):
                yield text
            elif cut:
                yield text[:cut]
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            yield self._fail_text(carry, error, consumed - len(error.object))
            return
        rest = carry + tail
        if rest:
            yield rest

    def _fail_text(self, carry: str, error: UnicodeDecodeError, base: int) -> str:
        """The valid text before the bad byte plus the sentinel; records the problem."""
        data: bytes = error.object
        self.problem = EncodingProblem(base + error.start, error.reason)
        return carry + data[: error.start].decode("utf-8") + SENTINEL
