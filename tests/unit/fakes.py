"""In-process stand-ins for Pub/Sub, Cloud Tasks and Leanplum, and a harness that wires them
with :class:`~tests.unit.memory_store.MemoryStore` into the real lifecycle code.

What the fakes promise is what the importer relies on (and what the contract tests prove of
the emulators and the simulator): Pub/Sub returns a message id or raises; Cloud Tasks refuses a
second task of the same name; Leanplum makes one job per ``multi`` and reports it by id.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from functions import ingest, poller
from functions.access import BucketRole
from functions.config import IngestConfig, PollerConfig
from functions.import_record import ImportRecord, now_iso
from functions.leanplum import JobStatus, LeanplumError
from functions.leanplum_apps import AppRoutes
from functions.poll_tasks import poll_payload, start_payload, start_task_id, task_id_for
from functions.poller import PollOutcome
from functions.records import RecordStore
from functions.services import IngestServices, PollerServices
from tests.unit.memory_store import GuardedStore, MemoryStore

BUCKET = "landing"
STATE = "importer-state"
LEANPLUM_BUCKET = "leanplum-given"
ROLES: dict[str, BucketRole] = {BUCKET: "landing", STATE: "state", LEANPLUM_BUCKET: "leanplum"}
QUEUE = "projects/p/locations/l/queues/poll"
START_QUEUE = "projects/p/locations/l/queues/start"
TASK_HEADERS = {
    "X-CloudTasks-QueueName": "poll",
    "X-CloudTasks-TaskName": "poll-task",
    "Authorization": "Bearer " + "t" * 40,
}


@dataclass
class RecordingPublisher:
    """Pub/Sub as the importer sees it; ``fail_next`` makes the next publishes raise."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def publish(self, message: dict[str, Any]) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TimeoutError("publishing took too long (injected)")
        self.messages.append(json.loads(json.dumps(message)))
        return str(len(self.messages))


@dataclass
class MemoryPollScheduler:
    """Cloud Tasks' one rule that matters here: a task name is accepted once."""

    tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    start_tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts: int = 0

    def ensure_poll(self, record: ImportRecord) -> str:
        self.attempts += 1
        name = f"{QUEUE}/tasks/{task_id_for(record.job_ids)}"
        self.tasks.setdefault(name, poll_payload(record))
        return name

    def ensure_start(self, record: ImportRecord) -> str:
        name = f"{START_QUEUE}/tasks/{start_task_id(record)}"
        self.start_tasks.setdefault(name, start_payload(record))
        return name


@dataclass
class FakeLeanplum:
    """Leanplum's job API: one job per ``multi``, rows read from the store when it starts.

    ``start_errors`` are raised by the next ``multi`` calls in turn (an error *instead* of a
    job); ``job_states`` overrides what ``getMultiResults`` reports for a job; ``warn_rows``
    lists row numbers (1-based data rows) whose result line carries a warning.
    """

    store: MemoryStore
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    multi_calls: list[tuple[str, str]] = field(default_factory=list)
    #: The app each ``multi`` was sent for, in order (``None``: the default app).
    multi_apps: list[str | None] = field(default_factory=list)
    #: The app of the client handed out last (set by the harness's factory).
    app: str | None = None
    start_errors: list[Exception] = field(default_factory=list)
    status_errors: list[Exception] = field(default_factory=list)
    job_states: dict[str, str] = field(default_factory=dict)
    #: What a job not named in ``job_states`` reports (RUNNING keeps every job at work).
    default_state: str = "FINISHED"
    warn_rows: set[int] = field(default_factory=set)
    closed: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start_import(self, bucket: str, file: str, *, retry: bool = True) -> str:
        self.multi_calls.append((bucket, file))
        self.multi_apps.append(self.app)
        if self.start_errors:
            raise self.start_errors.pop(0)
        rows = list(csv.reader(io.StringIO(self.store.data(bucket, file).decode())))[1:]
        job_id = f"job-{next(self._ids)}"
        self.jobs[job_id] = {"bucket": bucket, "file": file, "rows": len(rows), "app": self.app}
        return job_id

    def job_status(self, job_id: str) -> JobStatus:
        if self.status_errors:
            raise self.status_errors.pop(0)
        job = self.jobs.get(job_id)
        if job is None:
            raise LeanplumError(f"unknown job {job_id}")
        state = self.job_states.get(job_id, self.default_state)
        if state != "FINISHED":
            return JobStatus(state=state, error="Job failed (fake)" if state == "FAILED" else None)
        failures = len([n for n in self.warn_rows if n <= job["rows"]])
        return JobStatus(state, job["rows"] - failures, failures, [f"mem://results/{job_id}"])

    def download_results(self, url: str) -> bytes:
        job = self.jobs[url.rsplit("/", 1)[-1]]
        lines = [
            {"success": True, "warning": {"message": "Unknown parameter"}}
            if row in self.warn_rows
            else {"success": True}
            for row in range(1, job["rows"] + 1)
        ]
        return "\n".join(json.dumps(line) for line in lines).encode()

    def close(self) -> None:
        self.closed += 1


@dataclass
class Harness:
    """The lifecycle with every dependency in memory, and a clock the test moves."""

    store: MemoryStore = field(default_factory=MemoryStore)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    polls: MemoryPollScheduler = field(default_factory=MemoryPollScheduler)
    now: float = 1_800_000_000.0
    lease_seconds: int = 540
    duplicate_policy: str = "skip"
    max_decompressed_bytes: int = 2_000_000_000
    max_running_jobs: int = 5
    max_queued_seconds: int = 259_200
    leanplum_bucket: str | None = None
    leanplum_bucket_cleanup: bool = True
    routes: AppRoutes = field(default_factory=lambda: AppRoutes.single("app", "dev-key-unit"))
    leanplum: FakeLeanplum = field(init=False)

    def __post_init__(self) -> None:
        self.leanplum = FakeLeanplum(self.store)
        self.records = RecordStore(self.store, STATE)
        self.ingest_view = GuardedStore(self.store, "ingest", ROLES)
        self.poller_view = GuardedStore(self.store, "poller", ROLES)

    @property
    def ingest_services(self) -> IngestServices:
        config = IngestConfig(
            leanplum_app_id="app",
            leanplum_dev_key="dev-key-unit",
            leanplum_api_url="http://x",
            results_topic="projects/p/topics/r",
            state_bucket=STATE,
            tasks_queue=QUEUE,
            poller_url="http://poller",
            tasks_service_account="t@p.iam.gserviceaccount.com",
            start_queue=START_QUEUE,
            **self._shared_config(),
            incoming_prefix="incoming/",
            old_event_policy="move",
            max_future_seconds=600,
            max_rejected_fraction=0.1,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_compression_ratio=1000,
            naive_time_zone=None,
            duplicate_rows="drop",
            column_map={},
            drop_columns=frozenset(),
            min_event_time=date(2000, 1, 1),
            duplicate_policy=self.duplicate_policy,
            ingest_lease_seconds=self.lease_seconds,
            poll_first_delay_seconds=15,
        )
        return IngestServices(
            config,
            self.ingest_view,
            RecordStore(self.ingest_view, STATE),
            self.publisher,
            self.polls,
            self.polls,
            self.leanplum_for,
            clock=lambda: self.now,
        )

    def _shared_config(self) -> dict[str, Any]:
        return {
            "max_running_jobs": self.max_running_jobs,
            "max_queued_seconds": self.max_queued_seconds,
            "leanplum_bucket": self.leanplum_bucket,
            "leanplum_bucket_prefix": "leanplum-importer/",
            "leanplum_bucket_cleanup": self.leanplum_bucket_cleanup,
            "leanplum_app_routes": self.routes,
            "leanplum_app_ids": {},
        }

    def leanplum_for(self, app: str | None) -> FakeLeanplum:
        self.leanplum.app = app
        return self.leanplum

    def poller_services(self, deadline: int = 86_400, attempts: int = 160) -> PollerServices:
        config = PollerConfig(
            "app",
            "dev-key-unit",
            "http://x",
            "projects/p/topics/r",
            state_bucket=STATE,
            tasks_queue=QUEUE,
            poller_url="http://poller",
            tasks_service_account="t@p.iam.gserviceaccount.com",
            **self._shared_config(),
            ingest_lease_seconds=self.lease_seconds,
            poll_first_delay_seconds=15,
            poll_deadline_seconds=deadline,
            poll_max_attempts=attempts,
        )
        view = self.poller_view
        return PollerServices(
            config,
            view,
            RecordStore(view, STATE),
            self.publisher,
            self.polls,
            self.leanplum_for,
            clock=lambda: self.now,
        )

    # -- what the outside world does --------------------------------------------------------
    def upload(self, name: str, data: bytes, metadata: dict[str, str] | None = None) -> int:
        return self.store.put(BUCKET, name, data, metadata)

    def event(self, name: str, generation: int | None = None) -> dict[str, Any]:
        """The finalize event of ``name`` (its live generation unless given), as Eventarc sends."""
        info = self.store.live[(BUCKET, name)].info
        if generation is not None and generation != info.generation:
            return {"bucket": BUCKET, "name": name, "generation": str(generation)}
        return {
            "bucket": BUCKET,
            "name": name,
            "size": str(info.size),
            "generation": str(info.generation),
            "md5Hash": info.md5_hash,
            "metadata": info.metadata,
            "timeCreated": now_iso(),
        }

    def deliver(self, name: str, generation: int | None = None) -> str:
        return ingest.handle_event(self.event(name, generation), self.ingest_services)

    def poll(self, name: str, generation: int, retry_count: int = 0, **kwargs: int) -> PollOutcome:
        payload = {"bucket": BUCKET, "object": name, "generation": str(generation)}
        headers = {**TASK_HEADERS, "X-CloudTasks-TaskRetryCount": str(retry_count)}
        return poller.handle_poll(payload, headers, self.poller_services(**kwargs))

    def start(self, name: str, generation: int) -> PollOutcome:
        """One attempt of the file's start task (the start queue calls the poller function)."""
        payload = {"bucket": BUCKET, "object": name, "generation": str(generation), "step": "start"}
        return poller.handle_poll(payload, TASK_HEADERS, self.poller_services())

    def record(self, name: str, generation: int) -> ImportRecord:
        found = self.records.load(BUCKET, name, generation)
        assert found is not None, f"no record for {name}#{generation}"
        return found

    def messages_for(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.publisher.messages if m["file"]["object"] == name]

    def run_to_end(self, name: str, generation: int) -> list[dict[str, Any]]:
        """Deliver the event, then poll like Cloud Tasks until the poller answers 2xx."""
        self.deliver(name, generation)
        for _ in range(5):
            if self.poll(name, generation).status < 300:
                break
        return self.messages_for(name)


def events_csv(rows: int = 3, users: int = 2, event: str = "app_open") -> bytes:
    """A valid CSV of ``rows`` events of yesterday (already in Leanplum's format: the time is in
    whole seconds and rows are grouped by user, so the normalised bytes differ only if asked)."""
    yesterday = int(time.time()) - 86_400
    lines = ["userId,event,time,params.source"]
    lines += [f"user-{i % users},{event},{yesterday - i},organic" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def crash() -> Callable[[], None]:
    from tests.unit.memory_store import Crash

    def die() -> None:
        raise Crash

    return die
