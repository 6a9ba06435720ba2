"""Leanplum's per-row answers joined back to the rows of the file it read.

Why: Leanplum's results files list one JSON line per row, in file order, per job, without the
row itself. A person fixing failures needs the row and the reason side by side, so the poller
pairs them and writes a failed-rows CSV (row number, the row, Leanplum's message).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import zip_longest

from functions.import_record import ImportRecord, Part
from functions.leanplum import JobStatus
from functions.leanplum_replies import result_line_problem
from functions.logs import warning
from functions.objects import ObjectStore
from functions.services import LeanplumApi

NO_RESULT_LINE = "no result line from Leanplum"
#: The header is row 1, so the first data row is row 2 (as a spreadsheet numbers it).
FIRST_DATA_ROW = 2


@dataclass
class JoinedResults:
    """Counts of Leanplum's answers, and the failed rows with their reasons."""

    successes: int = 0
    failures: int = 0
    warnings_by_message: Counter[str] = field(default_factory=Counter)
    failed_rows_csv: bytes = b""


def _result_lines(client: LeanplumApi, status: JobStatus) -> Iterator[str]:
    for url in status.files:
        for line in client.download_results(url).decode().splitlines():
            if line.strip():
                yield line


def _part_generation(record: ImportRecord, part: Part) -> int | None:
    """The in-place rewrite is read at the generation Leanplum was given; parts live under the
    reserved prefix, written once, and are read as they are."""
    return record.output_generation if part.file == record.object else None


def join_results(
    record: ImportRecord,
    statuses: list[JobStatus],
    *,
    client: LeanplumApi,
    objects: ObjectStore,
) -> JoinedResults:
    """Pair each result line with the row it answers (results are in file order, per part)."""
    joined = JoinedResults()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header_written = False
    started = [part for part in record.parts if part.job_id]  # in job_ids order
    for part, status in zip(started, statuses, strict=True):
        if status.state != "FINISHED":
            continue
        with tempfile.TemporaryFile() as raw:
            bucket = part.bucket or record.bucket
            objects.download(bucket, part.file, _part_generation(record, part), raw)
            raw.seek(0)
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            reader = csv.reader(text)
            header = next(reader, [])
            if not header_written:
                writer.writerow(["row", *header, "leanplum_message"])
                header_written = True
            lines = _result_lines(client, status)
            for row_number, (row, line) in enumerate(zip_longest(reader, lines), FIRST_DATA_ROW):
                if row is None:
                    warning(
                        "Leanplum sent more result lines than the file has rows",
                        step="join",
                        **record.fields,
                    )
                    break
                problem = NO_RESULT_LINE if line is None else result_line_problem(line)
                if problem is None:
                    joined.successes += 1
                    continue
                joined.failures += 1
                joined.warnings_by_message[problem] += 1
                writer.writerow([row_number, *row, problem])
            text.detach()
    if joined.failures:
        joined.failed_rows_csv = out.getvalue().encode()
    return joined
