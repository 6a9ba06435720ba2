"""Write the exporter-shaped files of this folder (run this file with Python to rewrite them).

Why generated: the files imitate what BigQuery and a flattened GA4 export write (see
``../shared/exporters.md``), and a generator says exactly which traits each one carries; a
test checks the committed files still equal its output. Times are around the unit tests'
import time (2025-06-01 12:00 UTC), so they are neither old nor in the future there.

- ``bigquery_utc_header.csv``: ``EXPORT DATA ... header=true``: TIMESTAMP as
  ``YYYY-MM-DD HH:MM:SS[.ffffff] UTC``, NULL as an empty field, a quoted value with a line
  break, one row repeated exactly (overlapping shards), another column spelling
  (``user_id``, ``event_name``, ``event_time`` are aliases).
- ``bigquery_headerless.csv``: the same rows without ``header=true``: refused, quoting line 1.
- ``bigquery_datetime_naive.csv``: a DATETIME column (no zone at all): rejected unless the
  zone is named (``naive_timezone`` / ``--naive-time-zone``).
- ``ga4_microseconds.csv``: a GA4 export flattened in SQL: ``event_timestamp`` in
  microseconds (16 digits), the user in ``user_pseudo_id`` (needs ``COLUMN_MAP
  userId=user_pseudo_id``), ``event_date`` to drop, a session id and page columns.
- ``ga4_gzip_bytes.csv``: ``ga4_microseconds.csv`` gzipped under a ``.csv`` name, as a
  ``Content-Encoding: gzip`` upload downloaded raw arrives (for the command line).
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = datetime(2025, 5, 28, 9, 0, 0, tzinfo=UTC)

BIGQUERY_HEADER = ["user_id", "event_name", "event_time", "value", "currency", "note"]
GA4_HEADER = [
    "event_date",
    "event_timestamp",
    "event_name",
    "user_pseudo_id",
    "ga_session_id",
    "page_location",
]


def _csv(header: list[str] | None, rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _bigquery_time(moment: datetime, zone: str = " UTC") -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + zone


def bigquery_rows(zone: str = " UTC") -> list[list[str]]:
    """Eight events of three users; the last row repeats the second exactly."""
    rows = []
    for index in range(7):
        moment = START + timedelta(hours=index * 5, microseconds=(index % 3) * 250_000)
        purchase = index % 3 == 0
        rows.append(
            [
                f"user-{index % 3}",
                "purchase" if purchase else "screen_view",
                _bigquery_time(moment, zone),
                f"{index + 1}.99" if purchase else "",  # NULL: empty, never "NULL"
                "USD" if purchase else "",
                "first line\nsecond line" if index == 4 else f"note {index}",
            ]
        )
    rows.append(list(rows[1]))
    return rows


def ga4_rows() -> list[list[str]]:
    """Six GA4 events of two pseudo users, times in microseconds since the epoch."""
    rows = []
    for index in range(6):
        moment = START + timedelta(minutes=index * 17, microseconds=index * 123_457)
        micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
        rows.append(
            [
                moment.strftime("%Y%m%d"),
                str(micros),
                "page_view" if index % 2 else "session_start",
                f"{1_000_000 + index % 2}.{1_748_400_000 + index % 2}",
                str(1_748_400_000 + index % 2),
                f"https://example.com/p/{index}",
            ]
        )
    return rows


def corpus() -> dict[str, bytes]:
    """File name -> bytes, the gzip one excepted (its compressed bytes depend on zlib)."""
    return {
        "bigquery_utc_header.csv": _csv(BIGQUERY_HEADER, bigquery_rows()),
        "bigquery_headerless.csv": _csv(None, bigquery_rows()),
        "bigquery_datetime_naive.csv": _csv(BIGQUERY_HEADER, bigquery_rows(zone="")),
        "ga4_microseconds.csv": _csv(GA4_HEADER, ga4_rows()),
    }


def main() -> None:
    """Write every file of the corpus next to this script."""
    files = corpus()
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    (HERE / "ga4_gzip_bytes.csv").write_bytes(gzip.compress(files["ga4_microseconds.csv"], mtime=0))


if __name__ == "__main__":
    main()
