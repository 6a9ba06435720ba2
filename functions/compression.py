"""What an upload's bytes are, and gzip decompressed with bounds.

Why by magic bytes: gzip reaches a bucket three ways (a ``.gz`` name, a ``.csv`` name with
``Content-Encoding: gzip``, or bare gzip bytes with no hint), and Zip, Parquet and Avro exports
land under CSV-looking names too. The importer downloads the stored bytes as they are (no
transcoding) and looks at their first bytes, whatever the name or metadata say.

Why bounded: a few kilobytes of gzip can expand to terabytes. Decompression streams in chunks
to a file and stops, with a reason that names the limit, past ``MAX_DECOMPRESSED_BYTES`` or
past a compression ratio of ``MAX_COMPRESSION_RATIO``, so no input can fill the function's
memory-backed ``/tmp``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from functions.errors import ImporterError

Kind = Literal["csv", "gzip", "zip", "parquet", "avro"]
_MAGIC: tuple[tuple[bytes, Kind], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PAR1", "parquet"),
    (b"Obj\x01", "avro"),
)
#: What to say about a file that is not CSV: what it is, and what to export instead.
REFUSED_KINDS: dict[Kind, str] = {
    "zip": "a Zip archive",
    "parquet": "a Parquet file",
    "avro": "an Avro container file",
}
EXPORT_ADVICE = "export CSV with a header row instead (plain, or gzip-compressed)"
_CHUNK_BYTES = 1024 * 1024


class DecompressionRefused(ImporterError):
    """The gzip input is corrupt or would expand past a configured limit."""


def sniff(head: bytes) -> Kind:
    """The kind of file whose first bytes are ``head`` (CSV when nothing else matches)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "csv"


def refusal(kind: Kind) -> str | None:
    """The reason a file of ``kind`` is refused, or ``None`` when it can be imported."""
    if kind in REFUSED_KINDS:
        return f"the file is {REFUSED_KINDS[kind]}, not CSV: {EXPORT_ADVICE}"
    return None


@dataclass(frozen=True)
class Limits:
    """Bounds on one decompression (``MAX_DECOMPRESSED_BYTES``, ``MAX_COMPRESSION_RATIO``)."""

    max_bytes: int
    max_ratio: float


def gunzip(source: Path, target: Path, limits: Limits) -> int:
    """Decompress gzip ``source`` (several members allowed, as ``gzip`` writes) into ``target``,
    streaming, never more than a chunk of output at a time; returns the decompressed size.

    :raises DecompressionRefused: corrupt or truncated data, or a limit passed (the reason
        names it).
    """
    compressed = source.stat().st_size
    allowed = min(limits.max_bytes, int(max(compressed, 1) * limits.max_ratio))
    written = 0
    decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    pending = b""
    try:
        with source.open("rb") as src, target.open("wb") as out:
            while True:
                if not pending:
                    pending = src.read(_CHUNK_BYTES)
                    if not pending:
                        break
                data = decoder.decompress(pending, _CHUNK_BYTES)
                pending = decoder.unconsumed_tail
                written += len(data)
                if written > allowed:
                    raise DecompressionRefused(_limit_reason(compressed, limits, allowed))
                out.write(data)
                if decoder.eof:  # another gzip member may follow
                    pending = decoder.unused_data + pending
                    decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                    if not pending.strip(b"\x00"):
                        pending = b""  # trailing padding after the last member
                        if not src.read(1):
                            return written
                        raise DecompressionRefused("the gzip data has garbage after its end")
    except zlib.error as exc:
        raise DecompressionRefused(f"the gzip data is corrupt ({exc})") from exc
    raise DecompressionRefused("the gzip data is truncated (it ends inside a member)")


def _limit_reason(compressed: int, limits: Limits, allowed: int) -> str:
    if allowed == limits.max_bytes:
        return (
            f"the gzip input expands past {limits.max_bytes:,} bytes "
            "(MAX_DECOMPRESSED_BYTES): split the export into smaller shards"
        )
    return (
        f"the gzip input ({compressed:,} bytes) expands more than {limits.max_ratio:g} times "
        "(MAX_COMPRESSION_RATIO): refused as a possible decompression bomb"
    )
