"""What each function works with, built once per instance by ``main.py`` and handed down.

Why: the Storage, Pub/Sub and Cloud Tasks clients and the Leanplum client used to be module
singletons that tooling reset through private names. Passing them in means unit tests give the
lifecycle an in-memory store, a recording publisher and a fake Leanplum, and the local cloud
and the cloud give it the real clients, through the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from functions.config import IngestConfig, PollerConfig
from functions.leanplum import JobStatus
from functions.lifecycle import Publisher
from functions.objects import ObjectStore
from functions.poll_tasks import PollScheduler, StartScheduler
from functions.records import RecordStore

#: A Leanplum client for an app named in a record (``None``: the default app).
LeanplumFactory = Callable[[str | None], "LeanplumApi"]


class LeanplumApi(Protocol):
    """The Leanplum calls the importer makes (:class:`functions.leanplum.LeanplumClient`)."""

    def start_import(self, bucket: str, file: str, *, retry: bool = True) -> str: ...

    def job_status(self, job_id: str) -> JobStatus: ...

    def download_results(self, url: str) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class IngestServices:
    """The ingest function's configuration and clients."""

    config: IngestConfig
    objects: ObjectStore
    records: RecordStore
    publisher: Publisher
    polls: PollScheduler
    starts: StartScheduler | None
    leanplum: LeanplumFactory
    #: Seconds since the epoch, for leases (unit tests move it forward instead of waiting).
    clock: Callable[[], float] = field(default=time.time)


@dataclass(frozen=True)
class PollerServices:
    """The poller function's configuration and clients."""

    config: PollerConfig
    objects: ObjectStore
    records: RecordStore
    publisher: Publisher
    polls: PollScheduler
    leanplum: LeanplumFactory
    #: The poller serves the start queue's tasks, which wait by answering 503: it makes none.
    starts: StartScheduler | None = None
    clock: Callable[[], float] = field(default=time.time)
    #: Locally, checks the emulator-signed token for an audience (``None`` in the cloud, where
    #: Cloud Run and IAM check the real one before the function runs).
    verify_task_token: Callable[[str, str], str | None] | None = None


class StartServices(Protocol):
    """What starting a file's jobs needs: both functions start files (the ingest at once when a
    slot is free, the poller from the start queue), through :mod:`functions.job_start`."""

    @property
    def config(self) -> IngestConfig | PollerConfig: ...
    @property
    def objects(self) -> ObjectStore: ...
    @property
    def records(self) -> RecordStore: ...
    @property
    def publisher(self) -> Publisher: ...
    @property
    def polls(self) -> PollScheduler: ...
    @property
    def starts(self) -> StartScheduler | None: ...
    @property
    def leanplum(self) -> LeanplumFactory: ...
    @property
    def clock(self) -> Callable[[], float]: ...
