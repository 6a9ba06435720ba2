"""All mutable simulator state behind one lock: knobs, seeded randomness, jobs, recordings,
per-app name catalogs and the job-concurrency counters."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from local_cloud.leanplum_sim._actions import AppCatalog
from local_cloud.leanplum_sim._config import Apps, Knobs
from local_cloud.leanplum_sim._jobs import Fate, Job
from local_cloud.leanplum_sim._stats import JobStats


class SimState:
    def __init__(self, apps: Apps, knobs: Knobs, seed: int | None = None) -> None:
        self.apps = apps
        self._initial_knobs = knobs
        self._seed = seed
        self._lock = threading.Lock()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.knobs = self._initial_knobs.patched({})
        self._rng = random.Random(self._seed)
        self._requests: list[dict[str, Any]] = []
        self._jobs: dict[str, Job] = {}
        self._records: list[dict[str, Any]] = []
        self._catalogs: dict[str, AppCatalog] = {}
        self._stats = JobStats()

    def reset(self) -> None:
        """Forget requests, jobs, events, names and job counters; knobs and randomness go back
        to start-up.

        Jobs still running are cancelled: their workers stop at the next check and, holding
        the catalog of before the reset, touch nothing that is kept.
        """
        with self._lock:
            self._cancel_locked()
            self._reset_locked()

    def cancel_jobs(self) -> None:
        """Stop every job's worker (the simulator is stopping)."""
        with self._lock:
            self._cancel_locked()

    def _cancel_locked(self) -> None:
        for job in self._jobs.values():
            job.cancelled.set()

    # knobs and fault decisions -------------------------------------------------------------
    def snapshot(self) -> Knobs:
        with self._lock:
            return self.knobs.patched({})

    def patch_knobs(self, patch: dict[str, Any]) -> Knobs:
        with self._lock:
            self.knobs = self.knobs.patched(patch)
            return self.knobs.patched({})

    def roll(self, knob: str) -> bool:
        """True with the probability held by the rate knob ``knob``."""
        with self._lock:
            rate = float(getattr(self.knobs, knob))
            return rate > 0 and self._rng.random() < rate

    def take_count(self, knob: str) -> bool:
        """Use up one unit of a counting knob (``drop_multi_replies``...); False when none left."""
        with self._lock:
            left = int(getattr(self.knobs, knob))
            if left <= 0:
                return False
            setattr(self.knobs, knob, left - 1)
            return True

    def decide_fate(self) -> Fate:
        if self.take_count("fail_jobs") or self.roll("fail_job_rate"):
            return Fate.FAIL
        if self.take_count("hang_jobs") or self.roll("hang_job_rate"):
            return Fate.HANG
        return Fate.FINISH

    def catalog(self, app_id: str) -> AppCatalog:
        """The app's names ([DOC] the 500 event / 200 parameter name limits are per app)."""
        with self._lock:
            return self._catalogs.setdefault(app_id, AppCatalog())

    # jobs ----------------------------------------------------------------------------------
    @staticmethod
    def new_job_id() -> str:
        return uuid.uuid4().hex

    def add_job(self, job: Job) -> None:
        """Keep the job and count it: the peak is taken after every earlier job's state
        change up to now has been applied, so it is exact."""
        with self._lock:
            self._jobs[job.job_id] = job
            self._stats.created(job)

    def job(self, job_id: str, app_id: str | None = None) -> Job | None:
        """The job, or None when unknown or (``app_id`` given) created for another app."""
        with self._lock:
            self._stats.refresh()
            job = self._jobs.get(job_id)
        return job if job is not None and app_id in (None, job.app_id) else None

    def jobs(self, app_id: str | None = None) -> list[Job]:
        with self._lock:
            self._stats.refresh()
            return [j for j in self._jobs.values() if app_id in (None, j.app_id)]

    def stats(self) -> dict[str, Any]:
        """Job counters at this instant (see :class:`JobStats`)."""
        with self._lock:
            return self._stats.snapshot()

    def reset_stats(self) -> dict[str, Any]:
        """Peaks back to the current number of unfinished jobs; returns the counters."""
        with self._lock:
            self._stats.reset_peaks()
            return self._stats.snapshot()

    # recordings ----------------------------------------------------------------------------
    def record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["seq"] = len(self._requests) + 1
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def record_events(self, source: str, app_id: str, records: list[dict[str, Any]]) -> None:
        stamp = time.time()
        with self._lock:
            self._records.extend(
                {"source": source, "app_id": app_id, "at": stamp, **r} for r in records
            )

    def events(self) -> list[dict[str, Any]]:
        """Applied actions: inline ones as received, then those of FINISHED jobs, job by job."""
        with self._lock:
            out = [dict(r) for r in self._records]
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.state() == "FINISHED":
                source = f"job:{job.job_id}"
                out.extend({"source": source, "app_id": job.app_id, **r} for r in job.records)
        return out
