"""The Cloud Tasks emulator's backend: queues and tasks over time, under one lock.

Everything mutable lives in :class:`TasksBackend` behind one lock. A single scheduler thread waits
on the lock's condition variable until the earliest task is due (or a token of the queue's rate
limit is available) and hands due tasks to a pool of dispatch threads; anything that changes what
is due (create, run, resume, update, an attempt finishing, stop) notifies the condition. What a
queue or task may hold is checked in :mod:`~local_cloud.tasks_emulator.state`, one attempt is
built and sent by :mod:`~local_cloud.tasks_emulator.dispatch`, retries are computed by
:mod:`~local_cloud.tasks_emulator.retry`.

The public methods take and return ``google.cloud.tasks_v2`` messages and raise
:class:`~local_cloud.grpc_common.RpcError` with the gRPC status code the real service would use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue as queue_mod
import secrets
import threading
import time
from collections import deque
from datetime import timedelta

import requests
from google.cloud import tasks_v2

from local_cloud.grpc_common import already_exists, not_found, paginate, to_datetime, to_epoch
from local_cloud.tasks_emulator.dispatch import Job, Outcome, record_outcome, send, start_attempt
from local_cloud.tasks_emulator.retry import effective_policy
from local_cloud.tasks_emulator.state import (
    DEFAULT_DISPATCH_DEADLINE,
    DEFAULT_TOMBSTONE_SECONDS,
    QueueState,
    TaskState,
    check_new_queue_name,
    check_parent,
    check_queue_name,
    check_update_mask,
    copy_queue,
    copy_task,
    normalized_queue,
    queue_of_task,
    updated_queue,
    validate_new_task,
    viewed,
)

log = logging.getLogger("local_cloud.tasks_emulator")


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
        self._queues: dict[str, QueueState] = {}
        self._tombstones: dict[str, float] = {}
        self._forced: deque[tuple[QueueState, TaskState]] = deque()
        self._seq = itertools.count()
        self._stopping = False
        self._jobs: queue_mod.SimpleQueue[Job | None] = queue_mod.SimpleQueue()
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
        check_new_queue_name(parent, queue.name)
        new = normalized_queue(queue)
        with self._cond:
            if queue.name in self._queues:
                raise already_exists(f"Queue {queue.name} already exists")
            self._queues[queue.name] = self._new_queue_state(new)
            log.info("queue created: %s", queue.name)
            return copy_queue(new)

    def get_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            return copy_queue(self._queue(name).queue)

    def list_queues(
        self, parent: str, page_size: int, page_token: str
    ) -> tuple[list[tasks_v2.Queue], str]:
        check_parent(parent)
        with self._cond:
            names = sorted(n for n in self._queues if n.startswith(parent + "/queues/"))
            page, token = paginate(names, page_size, page_token)
            return [copy_queue(self._queues[n].queue) for n in page], token

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
        check_queue_name(queue.name, "queue.name")
        check_update_mask(mask_paths)
        with self._cond:
            existing = self._queues.get(queue.name)
            if existing is None:
                # Like the real service: UpdateQueue creates a missing queue.
                new = normalized_queue(queue)
                self._queues[queue.name] = self._new_queue_state(new)
                return copy_queue(new)
            existing.queue = updated_queue(existing.queue, queue, mask_paths)
            self._cond.notify_all()
            return copy_queue(existing.queue)

    def set_queue_state(self, name: str, state: int) -> tasks_v2.Queue:
        with self._cond:
            qs = self._queue(name)
            qs.queue.state = tasks_v2.Queue.State(state)
            self._cond.notify_all()
            return copy_queue(qs.queue)

    def purge_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            qs = self._queue(name)
            now = time.time()
            for task_name in qs.tasks:
                self._tombstone(task_name, now)
            qs.tasks.clear()
            qs.heap.clear()
            qs.queue.purge_time = to_datetime(now)
            self._cond.notify_all()
            return copy_queue(qs.queue)

    # ----------------------------------------------------------------- tasks

    def create_task(
        self, parent: str, task: tasks_v2.Task, view: tasks_v2.Task.View
    ) -> tasks_v2.Task:
        now = time.time()
        new = copy_task(task)
        validate_new_task(parent, new, now)
        with self._cond:
            qs = self._queue(parent)
            if not new.name:
                new.name = f"{parent}/tasks/{secrets.randbits(63)}"
            self._expire_tombstones(now)
            if new.name in qs.tasks:
                raise already_exists(f"Task {new.name} already exists")
            if new.name in self._tombstones:
                raise already_exists(
                    f"Task {new.name} already exists: the name of a deleted or completed task "
                    f"cannot be reused for {self._tombstone_seconds:g}s",
                )
            schedule = to_epoch(new.schedule_time) if "schedule_time" in new else now
            new.schedule_time = to_datetime(schedule)
            new.create_time = to_datetime(now)
            if "dispatch_deadline" not in new:
                new.dispatch_deadline = timedelta(seconds=DEFAULT_DISPATCH_DEADLINE)
            new.dispatch_count = 0
            new.response_count = 0
            ts = TaskState(task=new, seq=next(self._seq), schedule=schedule)
            qs.tasks[new.name] = ts
            self._push(qs, ts)
            log.info("task created: %s (eta %.3f)", new.name, schedule)
            return viewed(new, view)

    def get_task(self, name: str, view: tasks_v2.Task.View) -> tasks_v2.Task:
        with self._cond:
            return viewed(self._task(name)[1].task, view)

    def list_tasks(
        self, parent: str, view: tasks_v2.Task.View, page_size: int, page_token: str
    ) -> tuple[list[tasks_v2.Task], str]:
        with self._cond:
            qs = self._queue(parent)
            states = sorted(qs.tasks.values(), key=lambda s: s.seq)
            page, token = paginate(states, page_size, page_token)
            return [viewed(s.task, view) for s in page], token

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
            return viewed(ts.task, view)

    # ----------------------------------------------------------------- internals (lock held)

    def _new_queue_state(self, queue: tasks_v2.Queue) -> QueueState:
        return QueueState(
            queue=queue, tokens=float(queue.rate_limits.max_burst_size), tokens_at=time.time()
        )

    def _queue(self, name: str) -> QueueState:
        qs = self._queues.get(name)
        if qs is None:
            check_queue_name(name)
            raise not_found(f"Queue {name} does not exist")
        return qs

    def _task(self, name: str) -> tuple[QueueState, TaskState]:
        qs = self._queue(queue_of_task(name))
        ts = qs.tasks.get(name)
        if ts is None:
            raise not_found(f"Task {name} does not exist")
        return qs, ts

    def _tombstone(self, name: str, now: float) -> None:
        if self._tombstone_seconds > 0:
            self._tombstones[name] = now + self._tombstone_seconds

    def _expire_tombstones(self, now: float) -> None:
        expired = [name for name, until in self._tombstones.items() if until <= now]
        for name in expired:
            del self._tombstones[name]

    def _push(self, qs: QueueState, ts: TaskState) -> None:
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

    def _take_token(self, qs: QueueState, now: float) -> float:
        rate = qs.queue.rate_limits.max_dispatches_per_second
        burst = float(max(1, qs.queue.rate_limits.max_burst_size))
        qs.tokens = min(burst, qs.tokens + (now - qs.tokens_at) * rate)
        qs.tokens_at = now
        if qs.tokens >= 1.0:
            qs.tokens -= 1.0
            return 0.0
        return (1.0 - qs.tokens) / rate

    def _start_attempt(self, qs: QueueState, ts: TaskState, now: float) -> None:
        self._jobs.put(start_attempt(qs, ts, now))

    # ----------------------------------------------------------------- dispatch

    def _dispatch_loop(self) -> None:
        session = requests.Session()
        session.trust_env = False  # never send local traffic through a proxy from the env
        while True:
            job = self._jobs.get()
            if job is None or self._stopping:
                return
            self._finish(job, send(session, job))

    def _finish(self, job: Job, outcome: Outcome) -> None:
        with self._cond:
            self._cond.notify_all()
            qs, ts = job.queue_state, job.task_state
            qs.in_flight -= 1
            record_outcome(ts, outcome)
            task = ts.task
            name = task.name
            alive = self._queues.get(qs.queue.name) is qs and qs.tasks.get(name) is ts
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
            policy = effective_policy(qs.queue, task)
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
            task.schedule_time = to_datetime(ts.schedule)
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
