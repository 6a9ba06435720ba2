"""Job-concurrency counters: how many CSV jobs are unfinished now, and the most there were.

Why: the importer must not flood Leanplum with parallel import jobs (and must never start two
for one file). A test can only check such a bound if the simulator counts exactly, so the
counters are kept by the simulator itself rather than derived by polling from outside.

"Unfinished" is PENDING or RUNNING, the state ``getMultiResults`` reports (hung jobs stay
RUNNING, so they stay unfinished). A job's state follows its clock and its worker; every
reading of the counters, and every job creation, first applies every state change up to
that instant (under the simulator's one lock, which the caller holds), so the count and the
peak are exact, never a sample. A job only ever leaves the unfinished set once (FINISHED and
FAILED are final), so the peak can only rise when a job is created.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from local_cloud.leanplum_sim._jobs import Job

UNFINISHED_STATES = frozenset({"PENDING", "RUNNING"})


class JobStats:
    """Not thread-safe by itself: every method is called with the simulator's lock held."""

    def __init__(self) -> None:
        self._unfinished: dict[str, Job] = {}
        self._created: Counter[str] = Counter()  # app id -> jobs created
        self._peak = 0
        self._peak_by_app: dict[str, int] = {}
        self._peak_since = time.time()

    def refresh(self, now_mono: float | None = None) -> None:
        """Drop every job that has reached FINISHED or FAILED by ``now_mono``."""
        now = time.monotonic() if now_mono is None else now_mono
        ended = [k for k, j in self._unfinished.items() if j.state(now) not in UNFINISHED_STATES]
        for job_id in ended:
            del self._unfinished[job_id]

    def _unfinished_by_app(self) -> Counter[str]:
        return Counter(j.app_id for j in self._unfinished.values())

    def created(self, job: Job) -> None:
        """Count a new job (PENDING) and raise the peaks if it makes a new high."""
        self.refresh()
        self._unfinished[job.job_id] = job
        self._created[job.app_id] += 1
        self._peak = max(self._peak, len(self._unfinished))
        in_app = self._unfinished_by_app()[job.app_id]
        self._peak_by_app[job.app_id] = max(self._peak_by_app.get(job.app_id, 0), in_app)

    def reset_peaks(self) -> None:
        """Peaks back to the number of jobs unfinished right now (jobs created stay counted)."""
        self.refresh()
        self._peak = len(self._unfinished)
        by_app = self._unfinished_by_app()
        self._peak_by_app = {app: by_app.get(app, 0) for app in self._created}
        self._peak_since = time.time()

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_sim/stats`` answers."""
        now = time.monotonic()
        self.refresh(now)
        states = Counter(j.state(now) for j in self._unfinished.values())
        by_app = self._unfinished_by_app()
        return {
            "unfinished_jobs": len(self._unfinished),
            "peak_unfinished_jobs": self._peak,
            "pending_jobs": states.get("PENDING", 0),
            "running_jobs": states.get("RUNNING", 0),
            "jobs_created": sum(self._created.values()),
            "jobs_by_app": dict(self._created),
            "unfinished_by_app": {app: by_app.get(app, 0) for app in self._created},
            "peak_unfinished_by_app": dict(self._peak_by_app),
            "peak_since": self._peak_since,
        }
