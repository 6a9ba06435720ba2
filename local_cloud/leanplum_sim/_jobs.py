"""CSV import jobs: created by ``multi`` at once, their rows checked by a worker thread.

Why a worker: a job-based API answers ``multi`` with a job id straight away and reads the file
later. Checking a few million rows takes tens of seconds, longer than a client's read
timeout, so it must not happen inside the request. A job's reported state combines its clock
(PENDING for ``pending_seconds``, then RUNNING for at least ``running_seconds``) with its
work: it is FINISHED or FAILED only once the worker is done. The worker starts when the job
leaves PENDING, downloads the generation seen by ``multi``, and checks the rows with "now"
= that moment, as Leanplum applies its rules when the job runs.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from local_cloud.leanplum_sim import _csvfile
from local_cloud.leanplum_sim._actions import AppCatalog, error, run_action


class Fate(enum.Enum):
    """How the job ends, decided when it is created (a file-level problem may FAIL it later)."""

    FINISH = "finish"
    FAIL = "fail"
    HANG = "hang"  # stays RUNNING forever


SIMULATED_FAILURE = "Job failed (simulated)"
#: Rows checked between two looks at the cancel flag (reset, stop).
CANCEL_CHECK_ROWS = 2048
_OK: dict[str, Any] = {"success": True}  # shared by every plain success: millions of rows


@dataclass
class Job:
    job_id: str
    app_id: str  # the app whose development key created it; only that app may poll it
    bucket: str
    file: str
    generation: int | None
    size: int
    default_action: str | None
    pending_seconds: float
    running_seconds: float
    lines_per_file: int
    fate: Fate = Fate.FINISH
    error: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    successes: int = 0
    warnings: int = 0
    created_at: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)
    started_at: float | None = None  # when the worker began reading the file
    bytes_read: int | None = None  # how much of gs://bucket/file the worker read
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def state(self, now_mono: float | None = None) -> str:
        elapsed = (time.monotonic() if now_mono is None else now_mono) - self.created_mono
        if elapsed < self.pending_seconds:
            return "PENDING"
        if (
            self.fate is Fate.HANG
            or not self.done.is_set()
            or elapsed < self.pending_seconds + self.running_seconds
        ):
            return "RUNNING"
        return "FAILED" if self.fate is Fate.FAIL else "FINISHED"

    @property
    def failures(self) -> int:
        return len(self.results) - self.successes

    def add(self, result: dict[str, Any], record: dict[str, Any] | None) -> None:
        """One row's result (and what was applied), in file order."""
        if result.get("success") is True:
            self.successes += 1
            if "warning" in result:
                self.warnings += 1
            elif len(result) == 1:
                result = _OK
        self.results.append(result)
        if record is not None:
            self.records.append({"row": len(self.results), **record})

    def fail(self, reason: str) -> None:
        """A file-level problem: the job ends FAILED, no row applied, no results files."""
        self.fate, self.error = Fate.FAIL, reason
        self.results, self.records = [], []
        self.successes = self.warnings = 0

    def file_count(self) -> int:
        return -(-len(self.results) // self.lines_per_file)

    def file_lines(self, index: int) -> list[dict[str, Any]]:
        start = index * self.lines_per_file
        return self.results[start : start + self.lines_per_file]

    def summary(self) -> dict[str, Any]:
        """What ``GET /_sim/jobs`` shows: the true fate, and the counts so far while running."""
        return {
            "jobId": self.job_id,
            "app_id": self.app_id,
            "bucket": self.bucket,
            "file": self.file,
            "generation": self.generation,
            "size": self.size,
            "bytesRead": self.bytes_read,
            "defaultAction": self.default_action,
            "state": self.state(),
            "fate": self.fate.value,
            "error": self.error,
            "rows": len(self.results),
            "successesCount": self.successes,
            "failuresCount": self.failures,
            "warningsCount": self.warnings,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "done": self.done.is_set(),
        }


@dataclass(frozen=True)
class JobContext:
    """What a worker needs besides the job, fixed when ``multi`` was answered."""

    read: Callable[[], bytes]  # raises FileUnreadable with the reason
    catalog: AppCatalog
    warn_events: Collection[str]


class FileUnreadable(Exception):
    """The object could not be read when the job ran (deleted, replaced, storage down)."""


def start(job: Job, context: JobContext) -> None:
    """Run the job in a daemon thread; a job fated to FAIL has nothing to do."""
    if job.fate is Fate.FAIL:
        job.error = job.error or SIMULATED_FAILURE
        job.done.set()
        return
    worker = threading.Thread(
        target=_work, args=(job, context), name=f"leanplum-job-{job.job_id[:8]}", daemon=True
    )
    worker.start()


def _work(job: Job, context: JobContext) -> None:
    if job.cancelled.wait(job.pending_seconds):
        return
    job.started_at = time.time()
    try:
        _check_rows(job, context)
    except FileUnreadable as exc:
        job.fail(str(exc))
    except _csvfile.FileRejected as exc:
        job.fail(str(exc))
    except Exception as exc:  # never leave a job RUNNING because of a simulator bug
        job.fail(f"Internal error while running the job: {type(exc).__name__}: {exc}")
    finally:
        job.done.set()


def _check_rows(job: Job, context: JobContext) -> None:
    data = context.read()
    job.bytes_read = len(data)
    now = time.time()
    catalog, warn_events, cancelled = context.catalog, context.warn_events, job.cancelled
    for count, row in enumerate(_csvfile.rows(_csvfile.decode(data), job.default_action)):
        if count % CANCEL_CHECK_ROWS == 0 and cancelled.is_set():
            return
        if row.action is None:
            job.add(error(row.error or "Invalid row"), None)
            continue
        outcome = run_action(
            row.action, now=now, catalog=catalog, warn_events=warn_events, require_time=True
        )
        job.add(outcome.result, outcome.record)
