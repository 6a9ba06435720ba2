"""State, scheduling and HTTP dispatch of the local Cloud Tasks emulator.

Everything mutable lives in :class:`TasksBackend` behind one lock. A single scheduler thread waits
on the lock's condition variable until the earliest task is due (or a token of the queue's rate
limit is available) and hands due tasks to a pool of dispatch threads; anything that changes what
is due (create, run, resume, update, an attempt finishing, stop) notifies the condition.

The public methods take and return ``google.cloud.tasks_v2`` messages and raise :class:`RpcError`
with the gRPC status code the real service would use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue as queue_mod
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import requests
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2, status_pb2

from local_cloud.tasks_emulator.oidc import make_oidc_token

log = logging.getLogger("local_cloud.tasks_emulator")
_T = TypeVar("_T")

# Defaults the real service picks for fields left unset when a queue is created
# (as shown by `gcloud tasks queues describe` for a queue created without flags).
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_MAX_RETRY_DURATION = 0.0
DEFAULT_MAX_DISPATCHES_PER_SECOND = 500.0
DEFAULT_MAX_CONCURRENT_DISPATCHES = 1000
MAX_DISPATCHES_PER_SECOND = 500.0
MAX_CONCURRENT_DISPATCHES = 5000
MAX_BURST_SIZE = 100

DEFAULT_DISPATCH_DEADLINE = 600.0  # 10 minutes
MAX_DISPATCH_DEADLINE = 1800.0  # 30 minutes
MAX_SCHEDULE_AHEAD = 30 * 24 * 3600.0  # 30 days
MAX_TASK_SIZE = 1024 * 1024
DEFAULT_TOMBSTONE_SECONDS = 3600.0

_PARENT_RE = re.compile(r"^projects/[^/]+/locations/[^/]+$")
_QUEUE_NAME_RE = re.compile(r"^(projects/[^/]+/locations/[^/]+)/queues/([A-Za-z0-9-]{1,100})$")
_TASK_NAME_RE = re.compile(
    r"^(projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100})/tasks/([A-Za-z0-9_-]{1,500})$"
)
# Headers the real service computes itself or reserves; values set on the task are ignored.
_RESERVED_HEADER_PREFIXES = ("x-google-", "x-appengine-", "x-cloudtasks-")
_RESERVED_HEADERS = {"host", "content-length", "user-agent"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}

_HTTP_TO_RPC_CODE = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.ABORTED,
    416: code_pb2.OUT_OF_RANGE,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}


class RpcError(Exception):
    """An error to answer with a gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- time helpers


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _to_epoch(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --------------------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryPolicy:
    """A queue's (or task's) effective retry configuration, in seconds."""

    max_attempts: int
    max_retry_duration: float
    min_backoff: float
    max_backoff: float
    max_doublings: int

    @classmethod
    def from_config(cls, rc: tasks_v2.RetryConfig) -> RetryPolicy:
        return cls(
            max_attempts=rc.max_attempts,
            max_retry_duration=_seconds(rc.max_retry_duration),
            min_backoff=_seconds(rc.min_backoff),
            max_backoff=_seconds(rc.max_backoff),
            max_doublings=rc.max_doublings,
        )

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = the retry after the first attempt).

        The interval starts at min_backoff, doubles ``max_doublings`` times, then grows linearly
        by ``min_backoff * 2**max_doublings`` per retry; it never exceeds max_backoff. With
        min 10s, max 300s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
        """
        n = max(0, retry_number - 1)
        doublings = min(self.max_doublings, 60)
        if n <= doublings:
            interval = math.ldexp(self.min_backoff, n)
        else:
            step = math.ldexp(self.min_backoff, doublings)
            interval = step * (1 + n - doublings)
        return max(0.0, min(interval, self.max_backoff))

    def should_stop(self, attempts: int, since_first_attempt: float) -> bool:
        """True when no further attempt may be made after ``attempts`` failed attempts.

        Both limits must be reached; an unlimited limit (-1 attempts, 0 duration) counts as
        reached only if the other one is limited. Both unlimited: retry forever.
        """
        attempts_limited = self.max_attempts != -1
        duration_limited = self.max_retry_duration > 0
        if not attempts_limited and not duration_limited:
            return False
        attempts_done = not attempts_limited or attempts >= self.max_attempts
        duration_done = not duration_limited or since_first_attempt >= self.max_retry_duration
        return attempts_done and duration_done


# --------------------------------------------------------------------------- state


@dataclass
class _TaskState:
    task: tasks_v2.Task
    seq: int
    schedule: float
    running: bool = False
    first_attempt_at: float | None = None
    non_5xx_responses: int = 0
    previous_response: int | None = None
    version: int = 0


@dataclass
class _QueueState:
    queue: tasks_v2.Queue
    tasks: dict[str, _TaskState] = field(default_factory=dict)
    heap: list[tuple[float, int, str, int]] = field(default_factory=list)
    in_flight: int = 0
    tokens: float = 0.0
    tokens_at: float = 0.0


@dataclass
class _Job:
    """One HTTP attempt, prepared under the lock and executed by a dispatch thread."""

    queue_state: _QueueState
    task_state: _TaskState
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    oidc_email: str | None
    oidc_audience: str
    oauth: bool


@dataclass
class _Outcome:
    status: int | None
    error: str | None
    response_time: float


def _rpc_status(outcome: _Outcome) -> status_pb2.Status:
    if outcome.status is None:
        text = outcome.error or "no response"
        code = code_pb2.DEADLINE_EXCEEDED if "timed out" in text else code_pb2.UNAVAILABLE
        return status_pb2.Status(code=code, message=text)
    if 200 <= outcome.status < 300:
        return status_pb2.Status(code=code_pb2.OK)
    code = _HTTP_TO_RPC_CODE.get(outcome.status)
    if code is None:
        code = code_pb2.FAILED_PRECONDITION if outcome.status < 500 else code_pb2.INTERNAL
    return status_pb2.Status(code=code, message=f"HTTP status code {outcome.status}")


# --------------------------------------------------------------------------- backend


class TasksBackend:
    """In-memory Cloud Tasks: queues, tasks, tombstones, scheduler and dispatchers."""

    def __init__(
        self,
        tombstone_seconds: float = DEFAULT_TOMBSTONE_SECONDS,
        dispatch_workers: int = 32,
    ) -> None:
        self._tombstone_seconds = tombstone_seconds
        self._dispatch_workers = dispatch_workers
        self._cond = threading.Condition(threading.Lock())
        self._queues: dict[str, _QueueState] = {}
        self._tombstones: dict[str, float] = {}
        self._forced: deque[tuple[_QueueState, _TaskState]] = deque()
        self._seq = itertools.count()
        self._stopping = False
        self._jobs: queue_mod.SimpleQueue[_Job | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        scheduler = threading.Thread(
            target=self._scheduler_loop, name="tasks-emulator-scheduler", daemon=True
        )
        self._threads.append(scheduler)
        for i in range(self._dispatch_workers):
            # Daemon threads: an attempt hanging until its dispatch deadline must not keep the
            # emulator process alive after stop.
            self._threads.append(
                threading.Thread(
                    target=self._dispatch_loop, name=f"tasks-emulator-dispatch-{i}", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for _ in range(self._dispatch_workers):
            self._jobs.put(None)
        for index, thread in enumerate(self._threads):
            thread.join(timeout=5 if index == 0 else 0.2)

    # ----------------------------------------------------------------- queues

    def create_queue(self, parent: str, queue: tasks_v2.Queue) -> tasks_v2.Queue:
        if not _PARENT_RE.match(parent):
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"parent must look like projects/PROJECT/locations/LOCATION, got {parent!r}",
            )
        match = _QUEUE_NAME_RE.match(queue.name)
        if not match:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "queue.name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE_ID "
                f"(QUEUE_ID: letters, digits, hyphens, at most 100), got {queue.name!r}",
            )
        if match.group(1) != parent:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"queue.name {queue.name!r} is not under parent {parent!r}",
            )
        new = _normalized_queue(queue)
        with self._cond:
            if queue.name in self._queues:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Queue {queue.name} already exists")
            self._queues[queue.name] = self._new_queue_state(new)
            log.info("queue created: %s", queue.name)
            return _copy_queue(new)

    def get_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            return _copy_queue(self._queue(name).queue)

    def list_queues(
        self, parent: str, page_size: int, page_token: str
    ) -> tuple[list[tasks_v2.Queue], str]:
        if not _PARENT_RE.match(parent):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {parent!r}")
        with self._cond:
            names = sorted(n for n in self._queues if n.startswith(parent + "/queues/"))
            page, token = _paginate(names, page_size, page_token)
            return [_copy_queue(self._queues[n].queue) for n in page], token

    def delete_queue(self, name: str) -> None:
        with self._cond:
            state = self._queue(name)
            now = time.time()
            for task_name in state.tasks:
                self._tombstone(task_name, now)
            del self._queues[name]
            log.info("queue deleted: %s", name)
            self._cond.notify_all()

    def update_queue(self, queue: tasks_v2.Queue, mask_paths: list[str]) -> tasks_v2.Queue:
        if not _QUEUE_NAME_RE.match(queue.name):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid queue.name {queue.name!r}")
        mask = field_mask_pb2.FieldMask(paths=mask_paths)
        if mask_paths:
            if not mask.IsValidForDescriptor(tasks_v2.Queue.pb().DESCRIPTOR):
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"invalid update_mask {mask_paths!r}"
                )
            output_only = {"name", "state", "purge_time", "rate_limits.max_burst_size"}
            if output_only & set(mask_paths):
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"update_mask may not name output-only fields: {sorted(output_only)}",
                )
        with self._cond:
            existing = self._queues.get(queue.name)
            if existing is None:
                # Like the real service: UpdateQueue creates a missing queue.
                new = _normalized_queue(queue)
                self._queues[queue.name] = self._new_queue_state(new)
                return _copy_queue(new)
            target = tasks_v2.Queue.pb(_copy_queue(existing.queue))
            source = tasks_v2.Queue.pb(queue)
            if mask_paths:
                mask.MergeMessage(source, target, replace_message_field=True)
            else:
                for field_name in ("rate_limits", "retry_config", "stackdriver_logging_config"):
                    target.ClearField(field_name)
                    if source.HasField(field_name):
                        getattr(target, field_name).CopyFrom(getattr(source, field_name))
            updated = _normalized_queue(tasks_v2.Queue.wrap(target))
            if "purge_time" in existing.queue:
                updated.purge_time = existing.queue.purge_time
            existing.queue = updated
            self._cond.notify_all()
            return _copy_queue(updated)

    def set_queue_state(self, name: str, state: int) -> tasks_v2.Queue:
        with self._cond:
            qs = self._queue(name)
            qs.queue.state = tasks_v2.Queue.State(state)
            self._cond.notify_all()
            return _copy_queue(qs.queue)

    def purge_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            qs = self._queue(name)
            now = time.time()
            for task_name in qs.tasks:
                self._tombstone(task_name, now)
            qs.tasks.clear()
            qs.heap.clear()
            qs.queue.purge_time = _to_datetime(now)
            self._cond.notify_all()
            return _copy_queue(qs.queue)

    # ----------------------------------------------------------------- tasks

    def create_task(
        self, parent: str, task: tasks_v2.Task, view: tasks_v2.Task.View
    ) -> tasks_v2.Task:
        now = time.time()
        new = _copy_task(task)
        _validate_new_task(parent, new, now)
        with self._cond:
            qs = self._queue(parent)
            if not new.name:
                new.name = f"{parent}/tasks/{secrets.randbits(63)}"
            self._expire_tombstones(now)
            if new.name in qs.tasks:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Task {new.name} already exists")
            if new.name in self._tombstones:
                raise RpcError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Task {new.name} already exists: the name of a deleted or completed task "
                    f"cannot be reused for {self._tombstone_seconds:g}s",
                )
            schedule = _to_epoch(new.schedule_time) if "schedule_time" in new else now
            new.schedule_time = _to_datetime(schedule)
            new.create_time = _to_datetime(now)
            if "dispatch_deadline" not in new:
                new.dispatch_deadline = timedelta(seconds=DEFAULT_DISPATCH_DEADLINE)
            new.dispatch_count = 0
            new.response_count = 0
            ts = _TaskState(task=new, seq=next(self._seq), schedule=schedule)
            qs.tasks[new.name] = ts
            self._push(qs, ts)
            log.info("task created: %s (eta %.3f)", new.name, schedule)
            return _viewed(new, view)

    def get_task(self, name: str, view: tasks_v2.Task.View) -> tasks_v2.Task:
        with self._cond:
            return _viewed(self._task(name)[1].task, view)

    def list_tasks(
        self, parent: str, view: tasks_v2.Task.View, page_size: int, page_token: str
    ) -> tuple[list[tasks_v2.Task], str]:
        with self._cond:
            qs = self._queue(parent)
            states = sorted(qs.tasks.values(), key=lambda s: s.seq)
            page, token = _paginate(states, page_size, page_token)
            return [_viewed(s.task, view) for s in page], token

    def delete_task(self, name: str) -> None:
        with self._cond:
            qs, _ = self._task(name)
            del qs.tasks[name]
            self._tombstone(name, time.time())
            log.info("task deleted: %s", name)

    def run_task(self, name: str, view: tasks_v2.Task.View) -> tasks_v2.Task:
        with self._cond:
            qs, ts = self._task(name)
            if not ts.running:
                self._forced.append((qs, ts))
                self._cond.notify_all()
            return _viewed(ts.task, view)

    # ----------------------------------------------------------------- internals (lock held)

    def _new_queue_state(self, queue: tasks_v2.Queue) -> _QueueState:
        return _QueueState(
            queue=queue, tokens=float(queue.rate_limits.max_burst_size), tokens_at=time.time()
        )

    def _queue(self, name: str) -> _QueueState:
        qs = self._queues.get(name)
        if qs is None:
            if not _QUEUE_NAME_RE.match(name):
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"queue name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE, "
                    f"got {name!r}",
                )
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Queue {name} does not exist")
        return qs

    def _task(self, name: str) -> tuple[_QueueState, _TaskState]:
        match = _TASK_NAME_RE.match(name)
        if not match:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "task name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE/"
                f"tasks/TASK, got {name!r}",
            )
        qs = self._queue(match.group(1))
        ts = qs.tasks.get(name)
        if ts is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Task {name} does not exist")
        return qs, ts

    def _tombstone(self, name: str, now: float) -> None:
        if self._tombstone_seconds > 0:
            self._tombstones[name] = now + self._tombstone_seconds

    def _expire_tombstones(self, now: float) -> None:
        expired = [name for name, until in self._tombstones.items() if until <= now]
        for name in expired:
            del self._tombstones[name]

    def _push(self, qs: _QueueState, ts: _TaskState) -> None:
        ts.version += 1
        heapq.heappush(qs.heap, (ts.schedule, ts.seq, ts.task.name, ts.version))
        self._cond.notify_all()

    # ----------------------------------------------------------------- scheduler

    def _scheduler_loop(self) -> None:
        with self._cond:
            while not self._stopping:
                timeout = self._dispatch_due(time.time())
                self._cond.wait(timeout=timeout)

    def _dispatch_due(self, now: float) -> float | None:
        """Start every attempt that may start now; return seconds until the next may."""
        while self._forced:
            qs, ts = self._forced.popleft()
            if self._queues.get(ts.task.name.rsplit("/tasks/", 1)[0]) is qs and (
                qs.tasks.get(ts.task.name) is ts and not ts.running
            ):
                self._start_attempt(qs, ts, now)
        wake: float | None = None
        for qs in self._queues.values():
            if qs.queue.state != tasks_v2.Queue.State.RUNNING:
                continue
            while qs.heap:
                schedule, _, name, version = qs.heap[0]
                due = qs.tasks.get(name)
                if due is None or due.version != version or due.running:
                    heapq.heappop(qs.heap)
                    continue
                if schedule > now:
                    wake = _earliest(wake, schedule - now)
                    break
                if qs.in_flight >= qs.queue.rate_limits.max_concurrent_dispatches:
                    break  # an attempt finishing notifies the condition
                token_wait = self._take_token(qs, now)
                if token_wait > 0:
                    wake = _earliest(wake, token_wait)
                    break
                heapq.heappop(qs.heap)
                self._start_attempt(qs, due, now)
        return wake

    def _take_token(self, qs: _QueueState, now: float) -> float:
        rate = qs.queue.rate_limits.max_dispatches_per_second
        burst = float(max(1, qs.queue.rate_limits.max_burst_size))
        qs.tokens = min(burst, qs.tokens + (now - qs.tokens_at) * rate)
        qs.tokens_at = now
        if qs.tokens >= 1.0:
            qs.tokens -= 1.0
            return 0.0
        return (1.0 - qs.tokens) / rate

    def _start_attempt(self, qs: _QueueState, ts: _TaskState, now: float) -> None:
        task = ts.task
        ts.running = True
        ts.version += 1  # invalidates heap entries of this task
        qs.in_flight += 1
        if ts.first_attempt_at is None:
            ts.first_attempt_at = now
            task.first_attempt = tasks_v2.Attempt(dispatch_time=_to_datetime(now))
        task.last_attempt = tasks_v2.Attempt(
            schedule_time=_to_datetime(ts.schedule), dispatch_time=_to_datetime(now)
        )
        retry_count = task.dispatch_count
        task.dispatch_count += 1

        http = task.http_request
        method = tasks_v2.HttpMethod(http.http_method).name
        if method == "HTTP_METHOD_UNSPECIFIED":
            method = "POST"
        headers = {
            k: v
            for k, v in http.headers.items()
            if k.lower() not in _RESERVED_HEADERS
            and not k.lower().startswith(_RESERVED_HEADER_PREFIXES)
        }
        if http.body and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/octet-stream"
        headers["User-Agent"] = "Google-Cloud-Tasks"
        headers["X-CloudTasks-QueueName"] = qs.queue.name.rsplit("/", 1)[1]
        headers["X-CloudTasks-TaskName"] = task.name.rsplit("/", 1)[1]
        headers["X-CloudTasks-TaskRetryCount"] = str(retry_count)
        headers["X-CloudTasks-TaskExecutionCount"] = str(ts.non_5xx_responses)
        headers["X-CloudTasks-TaskETA"] = f"{ts.schedule:.6f}"
        if ts.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(ts.previous_response)
        oidc_email: str | None = None
        if "oidc_token" in http:
            oidc_email = http.oidc_token.service_account_email
        job = _Job(
            queue_state=qs,
            task_state=ts,
            method=method,
            url=http.url,
            headers=headers,
            body=bytes(http.body),
            timeout=_seconds(task.dispatch_deadline),
            oidc_email=oidc_email,
            oidc_audience=http.oidc_token.audience or http.url,
            oauth="oauth_token" in http,
        )
        self._jobs.put(job)

    # ----------------------------------------------------------------- dispatch

    def _dispatch_loop(self) -> None:
        session = requests.Session()
        session.trust_env = False  # never send local traffic through a proxy from the env
        while True:
            job = self._jobs.get()
            if job is None or self._stopping:
                return
            outcome = self._send(session, job)
            self._finish(job, outcome)

    def _send(self, session: requests.Session, job: _Job) -> _Outcome:
        headers = dict(job.headers)
        if job.oidc_email is not None:
            headers["Authorization"] = "Bearer " + make_oidc_token(
                job.oidc_email, job.oidc_audience
            )
        elif job.oauth:
            headers["Authorization"] = "Bearer local-emulator-oauth-access-token"
        try:
            response = session.request(
                job.method,
                job.url,
                headers=headers,
                data=job.body or None,
                timeout=job.timeout,
                allow_redirects=False,
            )
            response.close()
            return _Outcome(status=response.status_code, error=None, response_time=time.time())
        except requests.Timeout:
            return _Outcome(
                status=None,
                error=f"dispatch deadline of {job.timeout:g}s exceeded (timed out)",
                response_time=time.time(),
            )
        except requests.RequestException as exc:
            return _Outcome(
                status=None, error=f"{type(exc).__name__}: {exc}", response_time=time.time()
            )

    def _finish(self, job: _Job, outcome: _Outcome) -> None:
        with self._cond:
            self._cond.notify_all()
            qs, ts = job.queue_state, job.task_state
            qs.in_flight -= 1
            ts.running = False
            task = ts.task
            name = task.name
            alive = self._queues.get(qs.queue.name) is qs and qs.tasks.get(name) is ts
            if outcome.status is not None:
                task.response_count += 1
                ts.previous_response = outcome.status
                if outcome.status < 500:
                    ts.non_5xx_responses += 1
            attempt = task.last_attempt
            attempt.response_time = _to_datetime(outcome.response_time)
            attempt.response_status = _rpc_status(outcome)
            task.last_attempt = attempt
            result = outcome.status if outcome.status is not None else outcome.error
            if not alive:
                log.info("attempt of deleted task %s ended: %s", name, result)
                return
            now = time.time()
            if outcome.status is not None and 200 <= outcome.status < 300:
                del qs.tasks[name]
                self._tombstone(name, now)
                log.info("task done: %s (attempt %d, %s)", name, task.dispatch_count, result)
                return
            policy = RetryPolicy.from_config(qs.queue.retry_config)
            if "retry_config" in task:
                policy = _overridden(policy, task.retry_config)
            since_first = now - (ts.first_attempt_at or now)
            if policy.should_stop(task.dispatch_count, since_first):
                del qs.tasks[name]
                self._tombstone(name, now)
                log.warning(
                    "task dropped after %d attempts: %s (last: %s)",
                    task.dispatch_count,
                    name,
                    result,
                )
                return
            delay = policy.delay(task.dispatch_count)
            ts.schedule = now + delay
            task.schedule_time = _to_datetime(ts.schedule)
            self._push(qs, ts)
            log.info(
                "task attempt %d failed: %s (%s); retry in %.3fs",
                task.dispatch_count,
                name,
                result,
                delay,
            )


# --------------------------------------------------------------------------- helpers


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _paginate(items: list[_T], page_size: int, page_token: str) -> tuple[list[_T], str]:
    try:
        start = int(page_token) if page_token else 0
    except ValueError as exc:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid page_token {page_token!r}"
        ) from exc
    if page_size < 0:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
    size = page_size or 1000
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _copy_queue(queue: tasks_v2.Queue) -> tasks_v2.Queue:
    copy: tasks_v2.Queue = tasks_v2.Queue.deserialize(tasks_v2.Queue.serialize(queue))
    return copy


def _copy_task(task: tasks_v2.Task) -> tasks_v2.Task:
    copy: tasks_v2.Task = tasks_v2.Task.deserialize(tasks_v2.Task.serialize(task))
    return copy


def _viewed(task: tasks_v2.Task, view: tasks_v2.Task.View) -> tasks_v2.Task:
    out = _copy_task(task)
    if view == tasks_v2.Task.View.FULL:
        out.view = tasks_v2.Task.View(tasks_v2.Task.View.FULL)
    else:
        out.view = tasks_v2.Task.View(tasks_v2.Task.View.BASIC)
        if "http_request" in out:
            out.http_request.body = b""
    return out


def _overridden(policy: RetryPolicy, rc: tasks_v2.RetryConfig) -> RetryPolicy:
    """A task-level RetryConfig overrides the queue's, field by field where set."""
    return RetryPolicy(
        max_attempts=rc.max_attempts or policy.max_attempts,
        max_retry_duration=(
            _seconds(rc.max_retry_duration)
            if "max_retry_duration" in rc
            else policy.max_retry_duration
        ),
        min_backoff=_seconds(rc.min_backoff) if "min_backoff" in rc else policy.min_backoff,
        max_backoff=_seconds(rc.max_backoff) if "max_backoff" in rc else policy.max_backoff,
        max_doublings=rc.max_doublings or policy.max_doublings,
    )


def _invalid(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _normalized_queue(queue: tasks_v2.Queue) -> tasks_v2.Queue:
    """Validate a queue's settings and fill unset ones with the service defaults.

    Fields are proto3 scalars, so 0 means unset and is replaced by the default, as the real
    service does.
    """
    q = _copy_queue(queue)
    q.purge_time = None
    if q.state == tasks_v2.Queue.State.STATE_UNSPECIFIED:
        q.state = tasks_v2.Queue.State(tasks_v2.Queue.State.RUNNING)
    rc = q.retry_config
    if rc.max_attempts < -1:
        raise _invalid("retry_config.max_attempts must be >= -1")
    if rc.max_doublings < 0:
        raise _invalid("retry_config.max_doublings must be >= 0")
    for name in ("min_backoff", "max_backoff", "max_retry_duration"):
        if name in rc and _seconds(getattr(rc, name)) < 0:
            raise _invalid(f"retry_config.{name} must not be negative")
    rc.max_attempts = rc.max_attempts or DEFAULT_MAX_ATTEMPTS
    rc.max_doublings = rc.max_doublings or DEFAULT_MAX_DOUBLINGS
    if "min_backoff" not in rc:
        rc.min_backoff = timedelta(seconds=DEFAULT_MIN_BACKOFF)
    if "max_backoff" not in rc:
        rc.max_backoff = timedelta(seconds=max(DEFAULT_MAX_BACKOFF, _seconds(rc.min_backoff)))
    if "max_retry_duration" not in rc:
        rc.max_retry_duration = timedelta(seconds=DEFAULT_MAX_RETRY_DURATION)
    if rc.min_backoff > rc.max_backoff:
        raise _invalid("retry_config.min_backoff must not exceed retry_config.max_backoff")
    q.retry_config = rc
    rl = q.rate_limits
    rate = rl.max_dispatches_per_second
    if rate < 0 or rate > MAX_DISPATCHES_PER_SECOND:
        raise _invalid(
            f"rate_limits.max_dispatches_per_second must be in (0, {MAX_DISPATCHES_PER_SECOND:g}]"
        )
    if rl.max_concurrent_dispatches < 0 or rl.max_concurrent_dispatches > MAX_CONCURRENT_DISPATCHES:
        raise _invalid(
            f"rate_limits.max_concurrent_dispatches must be in (0, {MAX_CONCURRENT_DISPATCHES}]"
        )
    rl.max_dispatches_per_second = rate or DEFAULT_MAX_DISPATCHES_PER_SECOND
    rl.max_concurrent_dispatches = rl.max_concurrent_dispatches or DEFAULT_MAX_CONCURRENT_DISPATCHES
    rl.max_burst_size = max(1, min(MAX_BURST_SIZE, math.ceil(rl.max_dispatches_per_second)))
    q.rate_limits = rl
    return q


def _validate_new_task(parent: str, task: tasks_v2.Task, now: float) -> None:
    if task.name:
        match = _TASK_NAME_RE.match(task.name)
        if not match:
            raise _invalid(
                "task.name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE/"
                "tasks/TASK_ID (TASK_ID: letters, digits, hyphens, underscores, at most 500), "
                f"got {task.name!r}"
            )
        if match.group(1) != parent:
            raise _invalid(f"task.name {task.name!r} is not in queue {parent!r}")
    if "app_engine_http_request" in task:
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED, "the emulator supports only http_request tasks"
        )
    if "http_request" not in task or not task.http_request.url:
        raise _invalid("task.http_request.url is required")
    http = task.http_request
    if not http.url.startswith(("http://", "https://")):
        raise _invalid(f"task.http_request.url must be an http(s) URL, got {http.url!r}")
    method = tasks_v2.HttpMethod(http.http_method).name
    if http.body and method not in _BODY_METHODS | {"HTTP_METHOD_UNSPECIFIED"}:
        raise _invalid(f"a body is allowed only with POST, PUT or PATCH, not {method}")
    if "oidc_token" in http and "oauth_token" in http:
        raise _invalid("set at most one of oidc_token and oauth_token")
    if "oidc_token" in http and not http.oidc_token.service_account_email:
        raise _invalid("oidc_token.service_account_email is required")
    if tasks_v2.Task.pb(task).ByteSize() > MAX_TASK_SIZE:
        raise _invalid(f"task is larger than the {MAX_TASK_SIZE} bytes limit")
    if "dispatch_deadline" in task:
        deadline = _seconds(task.dispatch_deadline)
        if deadline <= 0 or deadline > MAX_DISPATCH_DEADLINE:
            raise _invalid(f"dispatch_deadline must be in (0, {MAX_DISPATCH_DEADLINE:g}s]")
    if "schedule_time" in task and _to_epoch(task.schedule_time) > now + MAX_SCHEDULE_AHEAD:
        raise _invalid("schedule_time must be at most 30 days in the future")
    for output_only in ("create_time", "first_attempt", "last_attempt"):
        if output_only in task:
            delattr(task, output_only)
