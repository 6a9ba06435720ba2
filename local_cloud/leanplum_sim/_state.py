"""All mutable simulator state behind one lock: knobs, seeded randomness, jobs, recordings."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from local_cloud.leanplum_sim._actions import AppCatalog
from local_cloud.leanplum_sim._config import AppIdentity, Knobs
from local_cloud.leanplum_sim._jobs import Fate, Job


class SimState:
    def __init__(self, identity: AppIdentity, knobs: Knobs, seed: int | None = None) -> None:
        self.identity = identity
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
        self.catalog = AppCatalog()

    def reset(self) -> None:
        """Forget requests, jobs, events and names; knobs and randomness go back to start-up.

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

    # jobs ----------------------------------------------------------------------------------
    @staticmethod
    def new_job_id() -> str:
        return uuid.uuid4().hex

    def add_job(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.job_id] = job

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    # recordings ----------------------------------------------------------------------------
    def record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["seq"] = len(self._requests) + 1
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def record_events(self, source: str, records: list[dict[str, Any]]) -> None:
        stamp = time.time()
        with self._lock:
            self._records.extend({"source": source, "at": stamp, **r} for r in records)

    def events(self) -> list[dict[str, Any]]:
        """Applied actions: inline ones as received, then those of FINISHED jobs, job by job."""
        with self._lock:
            out = [dict(r) for r in self._records]
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.state() == "FINISHED":
                out.extend({"source": f"job:{job.job_id}", **r} for r in job.records)
        return out
