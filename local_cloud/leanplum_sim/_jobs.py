"""CSV import jobs. A job's state is computed from its timestamps, so nothing runs in background."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any


class Fate(enum.Enum):
    """How the job ends, decided when it is created."""

    FINISH = "finish"
    FAIL = "fail"
    HANG = "hang"  # stays RUNNING forever


SIMULATED_FAILURE = "Job failed (simulated)"


@dataclass
class Job:
    job_id: str
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
    created_at: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)

    def state(self, now_mono: float | None = None) -> str:
        elapsed = (time.monotonic() if now_mono is None else now_mono) - self.created_mono
        if elapsed < self.pending_seconds:
            return "PENDING"
        if self.fate is Fate.HANG or elapsed < self.pending_seconds + self.running_seconds:
            return "RUNNING"
        return "FAILED" if self.fate is Fate.FAIL else "FINISHED"

    @property
    def successes(self) -> int:
        return sum(1 for r in self.results if r.get("success") is True)

    @property
    def failures(self) -> int:
        return len(self.results) - self.successes

    @property
    def warnings(self) -> int:
        return sum(1 for r in self.results if r.get("success") is True and "warning" in r)

    def file_count(self) -> int:
        return -(-len(self.results) // self.lines_per_file)

    def file_lines(self, index: int) -> list[dict[str, Any]]:
        start = index * self.lines_per_file
        return self.results[start : start + self.lines_per_file]

    def summary(self) -> dict[str, Any]:
        """What ``GET /_sim/jobs`` shows (the true outcome, whatever the state)."""
        return {
            "jobId": self.job_id,
            "bucket": self.bucket,
            "file": self.file,
            "generation": self.generation,
            "size": self.size,
            "defaultAction": self.default_action,
            "state": self.state(),
            "fate": self.fate.value,
            "error": self.error,
            "rows": len(self.results),
            "successesCount": self.successes,
            "failuresCount": self.failures,
            "warningsCount": self.warnings,
            "createdAt": self.created_at,
        }
