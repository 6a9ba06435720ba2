"""Contract tests of the local Cloud Tasks emulator, through the real client library.

Every test talks gRPC to an in-process :class:`TasksEmulator` through
:func:`functions.cloud_tasks_client.make_tasks_client` (``CLOUD_TASKS_EMULATOR_HOST`` set), and
tasks are dispatched over real HTTP to a small recording server. Waits are condition waits with
deadlines, never sleeps.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2

from functions.cloud_tasks_client import EMULATOR_HOST_ENV, make_tasks_client
from local_cloud.tasks_emulator import RetryPolicy, TasksEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]

PROJECT_PARENT = "projects/local-project/locations/us-central1"
SERVICE_ACCOUNT = "importer@local-project.iam.gserviceaccount.com"


# --------------------------------------------------------------------------- HTTP target


@dataclass(frozen=True)
class Hit:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Target:
    """A ThreadingHTTPServer that records requests and answers with scripted statuses.

    ``script(path, [500, 200])`` answers 500 then 200 then 200...: the last status repeats.
    Paths starting with ``/block`` hold the response until :attr:`release` is set.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.hits: list[Hit] = []
        self.scripts: dict[str, list[int]] = {}
        self.release = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hit = Hit(time.time(), self.command, self.path, dict(self.headers.items()), body)
                with target.cond:
                    target.hits.append(hit)
                    target.in_flight += 1
                    target.max_in_flight = max(target.max_in_flight, target.in_flight)
                    script = target.scripts.get(self.path, [200])
                    status = script.pop(0) if len(script) > 1 else script[0]
                    target.cond.notify_all()
                if self.path.startswith("/block"):
                    target.release.wait(timeout=10)
                with target.cond:
                    target.in_flight -= 1
                    target.cond.notify_all()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the emulator gave up on this attempt (dispatch deadline)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def script(self, path: str, statuses: list[int]) -> None:
        with self.cond:
            self.scripts[path] = list(statuses)

    def hits_for(self, path: str) -> list[Hit]:
        with self.cond:
            return [h for h in self.hits if h.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[Hit]:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: sum(h.path == path for h in self.hits) >= count, timeout=timeout
            )
            hits = [h for h in self.hits if h.path == path]
        assert ok, f"expected {count} requests to {path} within {timeout}s, got {len(hits)}"
        return hits

    def assert_no_more(self, path: str, count: int, window: float) -> None:
        with self.cond:
            more = self.cond.wait_for(
                lambda: sum(h.path == path for h in self.hits) > count, timeout=window
            )
        assert not more, f"unexpected request number {count + 1} to {path}"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for state only observable through the API (no notification to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        threading.Event().wait(0.02)


def task_gone(client: tasks_v2.CloudTasksClient, name: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            client.get_task(name=name)
        except exceptions.NotFound:
            return True
        return False

    return check


def close_client(client: tasks_v2.CloudTasksClient) -> None:
    client.transport.close()  # type: ignore[no-untyped-call]


def decode_jwt_part(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tasks_emulator() -> Iterator[TasksEmulator]:
    emulator = TasksEmulator(port=0).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def tasks_client(
    tasks_emulator: TasksEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tasks_v2.CloudTasksClient]:
    monkeypatch.setenv(EMULATOR_HOST_ENV, tasks_emulator.address)
    client = make_tasks_client()
    yield client
    close_client(client)


@pytest.fixture
def tasks_target() -> Iterator[Target]:
    target = Target()
    target.thread.start()
    yield target
    target.release.set()
    target.server.shutdown()
    target.server.server_close()


QueueFactory = Callable[..., tasks_v2.Queue]


@pytest.fixture
def tasks_queue(tasks_client: tasks_v2.CloudTasksClient) -> QueueFactory:
    """Create a uniquely named queue; keyword arguments become RetryConfig/RateLimits fields."""

    def make(
        paused: bool = False,
        rate_limits: tasks_v2.RateLimits | None = None,
        **retry: Any,
    ) -> tasks_v2.Queue:
        name = f"{PROJECT_PARENT}/queues/q-{uuid.uuid4().hex[:12]}"
        queue = tasks_v2.Queue(name=name)
        if retry:
            queue.retry_config = tasks_v2.RetryConfig(**retry)
        if rate_limits is not None:
            queue.rate_limits = rate_limits
        created = tasks_client.create_queue(parent=PROJECT_PARENT, queue=queue)
        if paused:
            created = tasks_client.pause_queue(name=name)
        return created

    return make


def http_task(url: str, **kwargs: Any) -> tasks_v2.Task:
    return tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=url, **kwargs))


# --------------------------------------------------------------------------- retry policy


def test_backoff_follows_the_documented_schedule() -> None:
    policy = RetryPolicy(
        max_attempts=-1, max_retry_duration=0, min_backoff=10, max_backoff=300, max_doublings=3
    )
    delays = [policy.delay(n) for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 160, 240, 300, 300]


def test_retry_stops_only_when_both_limits_are_reached() -> None:
    def policy(attempts: int, duration: float) -> RetryPolicy:
        return RetryPolicy(attempts, duration, 0.1, 1.0, 16)

    assert policy(3, 0).should_stop(3, 0.0)
    assert not policy(3, 0).should_stop(2, 100.0)
    assert not policy(3, 10).should_stop(3, 5.0)
    assert policy(3, 10).should_stop(3, 10.0)
    assert policy(-1, 10).should_stop(50, 10.0)
    assert not policy(-1, 0).should_stop(10_000, 1e9)


# --------------------------------------------------------------------------- queues


def test_queue_crud_and_errors(tasks_client: tasks_v2.CloudTasksClient) -> None:
    name = f"{PROJECT_PARENT}/queues/crud-{uuid.uuid4().hex[:8]}"
    created = tasks_client.create_queue(parent=PROJECT_PARENT, queue=tasks_v2.Queue(name=name))
    assert created.name == name
    assert created.state == tasks_v2.Queue.State.RUNNING
    rc, rl = created.retry_config, created.rate_limits
    assert rc.max_attempts == 100
    assert rc.min_backoff == timedelta(seconds=0.1)
    assert rc.max_backoff == timedelta(seconds=3600)
    assert rc.max_doublings == 16
    assert rl.max_dispatches_per_second == 500
    assert rl.max_concurrent_dispatches == 1000

    assert tasks_client.get_queue(name=name) == created
    assert name in [q.name for q in tasks_client.list_queues(parent=PROJECT_PARENT)]
    with pytest.raises(exceptions.AlreadyExists):
        tasks_client.create_queue(parent=PROJECT_PARENT, queue=tasks_v2.Queue(name=name))

    updated = tasks_client.update_queue(
        queue=tasks_v2.Queue(name=name, retry_config=tasks_v2.RetryConfig(max_attempts=7)),
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"]),
    )
    assert updated.retry_config.max_attempts == 7
    assert updated.retry_config.max_doublings == 16
    assert tasks_client.pause_queue(name=name).state == tasks_v2.Queue.State.PAUSED
    assert tasks_client.resume_queue(name=name).state == tasks_v2.Queue.State.RUNNING

    tasks_client.delete_queue(name=name)
    with pytest.raises(exceptions.NotFound, match="does not exist"):
        tasks_client.get_queue(name=name)
    with pytest.raises(exceptions.NotFound):
        tasks_client.delete_queue(name=name)
    with pytest.raises(exceptions.InvalidArgument, match=r"queue\.name"):
        tasks_client.create_queue(
            parent=PROJECT_PARENT, queue=tasks_v2.Queue(name=f"{PROJECT_PARENT}/queues/bad_name")
        )
    with pytest.raises(exceptions.InvalidArgument, match="min_backoff"):
        tasks_client.create_queue(
            parent=PROJECT_PARENT,
            queue=tasks_v2.Queue(
                name=f"{PROJECT_PARENT}/queues/x-{uuid.uuid4().hex[:8]}",
                retry_config=tasks_v2.RetryConfig(
                    min_backoff=timedelta(seconds=5), max_backoff=timedelta(seconds=1)
                ),
            ),
        )


# --------------------------------------------------------------------------- tasks


def test_task_create_get_list_delete(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(paused=True)
    named = tasks_client.create_task(
        parent=queue.name,
        task=tasks_v2.Task(
            name=f"{queue.name}/tasks/file-1_part-1",
            http_request=tasks_v2.HttpRequest(url=tasks_target.url("/t"), body=b"payload"),
        ),
    )
    assert named.name == f"{queue.name}/tasks/file-1_part-1"
    assert named.http_request.body == b""  # BASIC view by default
    assert named.dispatch_deadline == timedelta(minutes=10)
    full = tasks_client.get_task(
        request={"name": named.name, "response_view": tasks_v2.Task.View.FULL}
    )
    assert full.http_request.body == b"payload"
    generated = tasks_client.create_task(parent=queue.name, task=http_task(tasks_target.url("/t")))
    assert generated.name.startswith(f"{queue.name}/tasks/")

    listed = [t.name for t in tasks_client.list_tasks(parent=queue.name)]
    assert listed == [named.name, generated.name]
    paged = tasks_client.list_tasks(request={"parent": queue.name, "page_size": 1})
    assert [t.name for t in paged] == listed

    tasks_client.delete_task(name=named.name)
    with pytest.raises(exceptions.NotFound):
        tasks_client.get_task(name=named.name)
    with pytest.raises(exceptions.NotFound):
        tasks_client.delete_task(name=named.name)
    with pytest.raises(exceptions.NotFound):
        tasks_client.create_task(
            parent=f"{PROJECT_PARENT}/queues/missing", task=http_task(tasks_target.url("/t"))
        )
    with pytest.raises(exceptions.InvalidArgument, match="url"):
        tasks_client.create_task(parent=queue.name, task=tasks_v2.Task())
    with pytest.raises(exceptions.InvalidArgument, match="body"):
        tasks_client.create_task(
            parent=queue.name,
            task=http_task(tasks_target.url("/t"), http_method="GET", body=b"x"),
        )
    assert tasks_target.hits == []  # paused queue: nothing dispatched


def test_duplicate_task_name_is_rejected_before_and_after_execution(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    paused = tasks_queue(paused=True)
    task = tasks_v2.Task(
        name=f"{paused.name}/tasks/dup",
        http_request=tasks_v2.HttpRequest(url=tasks_target.url("/d")),
    )
    tasks_client.create_task(parent=paused.name, task=task)
    with pytest.raises(exceptions.AlreadyExists):
        tasks_client.create_task(parent=paused.name, task=task)
    tasks_client.delete_task(name=task.name)
    with pytest.raises(exceptions.AlreadyExists, match="cannot be reused"):
        tasks_client.create_task(parent=paused.name, task=task)

    running = tasks_queue()
    done = tasks_v2.Task(
        name=f"{running.name}/tasks/done",
        http_request=tasks_v2.HttpRequest(url=tasks_target.url("/d")),
    )
    tasks_client.create_task(parent=running.name, task=done)
    tasks_target.wait_for("/d", 1)
    wait_until(task_gone(tasks_client, done.name))
    with pytest.raises(exceptions.AlreadyExists):
        tasks_client.create_task(parent=running.name, task=done)


def test_task_name_is_reusable_after_the_tombstone_period(
    monkeypatch: pytest.MonkeyPatch, tasks_target: Target
) -> None:
    with TasksEmulator(port=0, tombstone_seconds=0.3, dispatch_workers=2) as emulator:
        monkeypatch.setenv(EMULATOR_HOST_ENV, emulator.address)
        client = make_tasks_client()
        queue = client.create_queue(
            parent=PROJECT_PARENT, queue=tasks_v2.Queue(name=f"{PROJECT_PARENT}/queues/tomb")
        )
        client.pause_queue(name=queue.name)
        task = tasks_v2.Task(
            name=f"{queue.name}/tasks/t",
            http_request=tasks_v2.HttpRequest(url=tasks_target.url("/")),
        )
        client.create_task(parent=queue.name, task=task)
        client.delete_task(name=task.name)
        with pytest.raises(exceptions.AlreadyExists):
            client.create_task(parent=queue.name, task=task)

        def recreated() -> bool:
            try:
                client.create_task(parent=queue.name, task=task)
            except exceptions.AlreadyExists:
                return False
            return True

        wait_until(recreated, timeout=3)
        close_client(client)


# --------------------------------------------------------------------------- dispatch


def test_dispatch_sends_request_cloud_tasks_headers_and_oidc_token(
    tasks_client: tasks_v2.CloudTasksClient,
    tasks_queue: QueueFactory,
    tasks_target: Target,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.task_tokens import TOKEN_KEY_ENV, LocalTokenVerifier

    key = "ab" * 32
    monkeypatch.setenv(TOKEN_KEY_ENV, key)  # the emulator signs with the key the poller checks
    queue = tasks_queue()
    created = tasks_client.create_task(
        parent=queue.name,
        task=http_task(
            tasks_target.url("/h?x=1"),
            http_method=tasks_v2.HttpMethod.PUT,
            headers={"Content-Type": "application/json", "X-Custom": "yes"},
            body=b'{"a": 1}',
            oidc_token=tasks_v2.OidcToken(
                service_account_email=SERVICE_ACCOUNT, audience="https://importer.example"
            ),
        ),
    )
    (hit,) = tasks_target.wait_for("/h?x=1", 1)
    assert hit.method == "PUT"
    assert hit.body == b'{"a": 1}'
    h = hit.headers
    assert h["Content-Type"] == "application/json"
    assert h["X-Custom"] == "yes"
    assert h["User-Agent"] == "Google-Cloud-Tasks"
    assert h["X-CloudTasks-QueueName"] == queue.name.rsplit("/", 1)[1]
    assert h["X-CloudTasks-TaskName"] == created.name.rsplit("/", 1)[1]
    assert h["X-CloudTasks-TaskRetryCount"] == "0"
    assert h["X-CloudTasks-TaskExecutionCount"] == "0"
    eta = created.schedule_time.timestamp()
    assert float(h["X-CloudTasks-TaskETA"]) == pytest.approx(eta, abs=1e-3)

    scheme, token = h["Authorization"].split(" ", 1)
    assert scheme == "Bearer"
    header_part, payload_part, signature = token.split(".")
    assert signature
    assert decode_jwt_part(header_part)["alg"] == "HS256"
    verify = LocalTokenVerifier(bytes.fromhex(key)).problem
    assert verify(h["Authorization"], "https://importer.example") is None
    assert verify(h["Authorization"], "https://elsewhere.example") is not None
    claims = decode_jwt_part(payload_part)
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == "https://importer.example"
    assert claims["email"] == SERVICE_ACCOUNT
    assert claims["email_verified"] is True
    assert claims["sub"].isdigit()
    assert claims["iat"] <= time.time() + 1
    assert claims["exp"] > claims["iat"]

    # Without an explicit audience the token's audience is the task URL.
    tasks_client.create_task(
        parent=queue.name,
        task=http_task(
            tasks_target.url("/h2"),
            oidc_token=tasks_v2.OidcToken(service_account_email=SERVICE_ACCOUNT),
        ),
    )
    (hit2,) = tasks_target.wait_for("/h2", 1)
    claims2 = decode_jwt_part(hit2.headers["Authorization"].split(" ", 1)[1].split(".")[1])
    assert claims2["aud"] == tasks_target.url("/h2")
    assert "X-CloudTasks-QueueName" in hit2.headers


def test_future_schedule_time_is_respected(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue()
    eta = datetime.now(tz=UTC) + timedelta(seconds=0.8)
    task = http_task(tasks_target.url("/later"))
    task.schedule_time = eta
    created = tasks_client.create_task(parent=queue.name, task=task)
    assert tasks_client.get_task(name=created.name).dispatch_count == 0
    (hit,) = tasks_target.wait_for("/later", 1, timeout=5)
    assert hit.at >= eta.timestamp() - 0.01
    assert float(hit.headers["X-CloudTasks-TaskETA"]) == pytest.approx(eta.timestamp(), abs=1e-3)


def test_retries_back_off_exponentially_and_stop_at_max_attempts(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(
        max_attempts=4,
        min_backoff=timedelta(seconds=0.1),
        max_backoff=timedelta(seconds=10),
        max_doublings=5,
    )
    tasks_target.script("/fail", [503])
    created = tasks_client.create_task(parent=queue.name, task=http_task(tasks_target.url("/fail")))
    hits = tasks_target.wait_for("/fail", 4, timeout=5)
    wait_until(task_gone(tasks_client, created.name))
    tasks_target.assert_no_more("/fail", 4, window=0.3)

    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    # Expected 0.1, 0.2, 0.4 s: allow scheduling jitter but demand real growth.
    assert 0.09 <= gaps[0] < 0.35, gaps
    assert gaps[1] > gaps[0] * 1.3, gaps
    assert gaps[2] > gaps[1] * 1.3, gaps
    assert gaps[2] >= 0.39, gaps
    assert [h.headers["X-CloudTasks-TaskRetryCount"] for h in hits] == ["0", "1", "2", "3"]
    # 5xx answers do not count as executions.
    assert {h.headers["X-CloudTasks-TaskExecutionCount"] for h in hits} == {"0"}
    assert hits[1].headers["X-CloudTasks-TaskPreviousResponse"] == "503"


def test_unlimited_attempts_beside_a_limited_queue_each_with_its_own_settings(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    """The local cloud's start queue retries without limit (``max_attempts = -1``, as Cloud
    Tasks spells it) beside the poll queue, which gives up: each queue keeps and applies its
    own retry config and rate limits."""
    waiting = tasks_queue(
        max_attempts=-1,
        min_backoff=timedelta(seconds=0.01),
        max_backoff=timedelta(seconds=0.02),
        max_doublings=1,
        rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=3),
    )
    limited = tasks_queue(
        max_attempts=3, min_backoff=timedelta(seconds=0.2), max_backoff=timedelta(seconds=0.2)
    )
    stored = tasks_client.get_queue(name=waiting.name)
    assert stored.retry_config.max_attempts == -1  # kept, not replaced by the default 100
    assert stored.retry_config.max_retry_duration == timedelta(0)
    assert stored.retry_config.max_backoff == timedelta(seconds=0.02)
    assert stored.rate_limits.max_concurrent_dispatches == 3
    assert tasks_client.get_queue(name=limited.name).retry_config.max_attempts == 3
    tasks_target.script("/waiting", [503])
    tasks_target.script("/limited", [503])
    kept = tasks_client.create_task(
        parent=waiting.name, task=http_task(tasks_target.url("/waiting"))
    )
    dropped = tasks_client.create_task(
        parent=limited.name, task=http_task(tasks_target.url("/limited"))
    )

    limited_hits = tasks_target.wait_for("/limited", 3)
    wait_until(task_gone(tasks_client, dropped.name))
    tasks_target.assert_no_more("/limited", 3, window=0.5)
    # Past the service's default of 100 attempts, and still there.
    waiting_hits = tasks_target.wait_for("/waiting", 120, timeout=30)
    assert tasks_client.get_task(name=kept.name).dispatch_count >= 120

    assert all(b.at - a.at >= 0.19 for a, b in itertools.pairwise(limited_hits))
    waiting_gaps = [b.at - a.at for a, b in itertools.pairwise(waiting_hits)]
    assert sorted(waiting_gaps)[len(waiting_gaps) // 2] < 0.15, waiting_gaps  # its own backoff
    tasks_target.script("/waiting", [200])  # the slot is free: the next attempt ends the wait
    wait_until(task_gone(tasks_client, kept.name))


def test_2xx_stops_retries_and_counts_executions(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(min_backoff=timedelta(seconds=0.05), max_backoff=timedelta(seconds=0.1))
    tasks_target.script("/flaky", [404, 429, 204])
    created = tasks_client.create_task(
        parent=queue.name, task=http_task(tasks_target.url("/flaky"))
    )
    hits = tasks_target.wait_for("/flaky", 3)
    wait_until(task_gone(tasks_client, created.name))
    tasks_target.assert_no_more("/flaky", 3, window=0.3)
    assert [h.headers["X-CloudTasks-TaskExecutionCount"] for h in hits] == ["0", "1", "2"]
    assert [h.headers["X-CloudTasks-TaskRetryCount"] for h in hits] == ["0", "1", "2"]


def test_attempt_bookkeeping_and_run_task(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(min_backoff=timedelta(seconds=30), max_backoff=timedelta(seconds=60))
    tasks_target.script("/run", [500, 200])
    created = tasks_client.create_task(parent=queue.name, task=http_task(tasks_target.url("/run")))
    tasks_target.wait_for("/run", 1)

    def failed_once() -> bool:
        return tasks_client.get_task(name=created.name).response_count == 1

    wait_until(failed_once)
    task = tasks_client.get_task(name=created.name)
    assert task.dispatch_count == 1
    assert task.first_attempt.dispatch_time.timestamp() > 0
    assert task.last_attempt.response_status.code == 13  # INTERNAL for HTTP 500
    assert task.schedule_time.timestamp() > time.time() + 20  # next retry in ~30 s

    started = time.time()
    tasks_client.run_task(name=created.name)
    hits = tasks_target.wait_for("/run", 2)
    assert hits[1].at - started < 2
    assert hits[1].headers["X-CloudTasks-TaskRetryCount"] == "1"
    wait_until(task_gone(tasks_client, created.name))

    # RunTask dispatches even from a paused queue, before schedule_time.
    paused = tasks_queue(paused=True)
    later = http_task(tasks_target.url("/run-paused"))
    later.schedule_time = datetime.now(tz=UTC) + timedelta(hours=1)
    held = tasks_client.create_task(parent=paused.name, task=later)
    tasks_client.run_task(name=held.name)
    tasks_target.wait_for("/run-paused", 1)
    with pytest.raises(exceptions.NotFound):
        tasks_client.run_task(name=f"{paused.name}/tasks/nope")


def test_max_concurrent_dispatches_is_honoured(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=1))
    names = [
        tasks_client.create_task(parent=queue.name, task=http_task(tasks_target.url("/block"))).name
        for _ in range(3)
    ]
    tasks_target.wait_for("/block", 1)
    tasks_target.assert_no_more("/block", 1, window=0.3)
    tasks_target.release.set()
    tasks_target.wait_for("/block", 3)
    for name in names:
        wait_until(task_gone(tasks_client, name))
    assert tasks_target.max_in_flight == 1


def test_dispatch_deadline_is_the_http_timeout(
    tasks_client: tasks_v2.CloudTasksClient, tasks_queue: QueueFactory, tasks_target: Target
) -> None:
    queue = tasks_queue(min_backoff=timedelta(seconds=0.05), max_attempts=2)
    task = http_task(tasks_target.url("/block-deadline"))
    task.dispatch_deadline = timedelta(seconds=0.3)
    created = tasks_client.create_task(parent=queue.name, task=task)
    hits = tasks_target.wait_for("/block-deadline", 2, timeout=5)
    assert 0.3 <= hits[1].at - hits[0].at < 2
    # A timed-out attempt got no response: it is not an execution.
    assert hits[1].headers["X-CloudTasks-TaskExecutionCount"] == "0"
    wait_until(task_gone(tasks_client, created.name))


# --------------------------------------------------------------------------- CLI


def test_cli_prints_ready_and_stops_on_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_cloud.tasks_emulator", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY 127.0.0.1:"), line
        address = line.split(" ", 1)[1]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(EMULATOR_HOST_ENV, address)
            client = make_tasks_client()
            queues = list(client.list_queues(parent=PROJECT_PARENT))
            close_client(client)
        assert queues == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
