"""The Cloud Tasks emulator's data: queues and tasks as stored, and the rules they must obey.

Holds what a queue or task *is* (resource names, limits, service defaults, the per-task and
per-queue bookkeeping of :class:`TaskState`/:class:`QueueState`) and the pure checks and
conversions on them (validating a new queue or task, applying an update mask, the BASIC/FULL
task views), so that :mod:`~local_cloud.tasks_emulator.core` is left with what happens over
time under its lock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2

from local_cloud.grpc_common import RpcError, invalid_argument, seconds, to_epoch
from local_cloud.tasks_emulator.retry import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_DOUBLINGS,
    DEFAULT_MAX_RETRY_DURATION,
    DEFAULT_MIN_BACKOFF,
)

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
_BODY_METHODS = {"POST", "PUT", "PATCH"}


@dataclass
class TaskState:
    task: tasks_v2.Task
    seq: int
    schedule: float
    running: bool = False
    first_attempt_at: float | None = None
    non_5xx_responses: int = 0
    previous_response: int | None = None
    version: int = 0


@dataclass
class QueueState:
    queue: tasks_v2.Queue
    tasks: dict[str, TaskState] = field(default_factory=dict)
    heap: list[tuple[float, int, str, int]] = field(default_factory=list)
    in_flight: int = 0
    tokens: float = 0.0
    tokens_at: float = 0.0


# --------------------------------------------------------------------------- names


def check_parent(parent: str) -> None:
    if not _PARENT_RE.match(parent):
        raise invalid_argument(
            f"parent must look like projects/PROJECT/locations/LOCATION, got {parent!r}"
        )


def check_new_queue_name(parent: str, name: str) -> None:
    check_parent(parent)
    match = _QUEUE_NAME_RE.match(name)
    if not match:
        raise invalid_argument(
            "queue.name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE_ID "
            f"(QUEUE_ID: letters, digits, hyphens, at most 100), got {name!r}"
        )
    if match.group(1) != parent:
        raise invalid_argument(f"queue.name {name!r} is not under parent {parent!r}")


def check_queue_name(name: str, what: str = "queue name") -> None:
    if not _QUEUE_NAME_RE.match(name):
        raise invalid_argument(
            f"{what} must look like projects/PROJECT/locations/LOCATION/queues/QUEUE, got {name!r}"
        )


def queue_of_task(name: str) -> str:
    """The queue name of the task called ``name`` (INVALID_ARGUMENT when malformed)."""
    match = _TASK_NAME_RE.match(name)
    if not match:
        raise invalid_argument(
            "task name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE/"
            f"tasks/TASK, got {name!r}"
        )
    return match.group(1)


# --------------------------------------------------------------------------- copies and views


def copy_queue(queue: tasks_v2.Queue) -> tasks_v2.Queue:
    copy: tasks_v2.Queue = tasks_v2.Queue.deserialize(tasks_v2.Queue.serialize(queue))
    return copy


def copy_task(task: tasks_v2.Task) -> tasks_v2.Task:
    copy: tasks_v2.Task = tasks_v2.Task.deserialize(tasks_v2.Task.serialize(task))
    return copy


def viewed(task: tasks_v2.Task, view: tasks_v2.Task.View) -> tasks_v2.Task:
    out = copy_task(task)
    if view == tasks_v2.Task.View.FULL:
        out.view = tasks_v2.Task.View(tasks_v2.Task.View.FULL)
    else:
        out.view = tasks_v2.Task.View(tasks_v2.Task.View.BASIC)
        if "http_request" in out:
            out.http_request.body = b""
    return out


# --------------------------------------------------------------------------- validation


def normalized_queue(queue: tasks_v2.Queue) -> tasks_v2.Queue:
    """Validate a queue's settings and fill unset ones with the service defaults.

    Fields are proto3 scalars, so 0 means unset and is replaced by the default, as the real
    service does.
    """
    q = copy_queue(queue)
    q.purge_time = None
    if q.state == tasks_v2.Queue.State.STATE_UNSPECIFIED:
        q.state = tasks_v2.Queue.State(tasks_v2.Queue.State.RUNNING)
    rc = q.retry_config
    if rc.max_attempts < -1:
        raise invalid_argument("retry_config.max_attempts must be >= -1")
    if rc.max_doublings < 0:
        raise invalid_argument("retry_config.max_doublings must be >= 0")
    for name in ("min_backoff", "max_backoff", "max_retry_duration"):
        if name in rc and seconds(getattr(rc, name)) < 0:
            raise invalid_argument(f"retry_config.{name} must not be negative")
    rc.max_attempts = rc.max_attempts or DEFAULT_MAX_ATTEMPTS
    rc.max_doublings = rc.max_doublings or DEFAULT_MAX_DOUBLINGS
    if "min_backoff" not in rc:
        rc.min_backoff = timedelta(seconds=DEFAULT_MIN_BACKOFF)
    if "max_backoff" not in rc:
        rc.max_backoff = timedelta(seconds=max(DEFAULT_MAX_BACKOFF, seconds(rc.min_backoff)))
    if "max_retry_duration" not in rc:
        rc.max_retry_duration = timedelta(seconds=DEFAULT_MAX_RETRY_DURATION)
    if rc.min_backoff > rc.max_backoff:
        raise invalid_argument("retry_config.min_backoff must not exceed retry_config.max_backoff")
    q.retry_config = rc
    rl = q.rate_limits
    rate = rl.max_dispatches_per_second
    if rate < 0 or rate > MAX_DISPATCHES_PER_SECOND:
        raise invalid_argument(
            f"rate_limits.max_dispatches_per_second must be in (0, {MAX_DISPATCHES_PER_SECOND:g}]"
        )
    if rl.max_concurrent_dispatches < 0 or rl.max_concurrent_dispatches > MAX_CONCURRENT_DISPATCHES:
        raise invalid_argument(
            f"rate_limits.max_concurrent_dispatches must be in (0, {MAX_CONCURRENT_DISPATCHES}]"
        )
    rl.max_dispatches_per_second = rate or DEFAULT_MAX_DISPATCHES_PER_SECOND
    rl.max_concurrent_dispatches = rl.max_concurrent_dispatches or DEFAULT_MAX_CONCURRENT_DISPATCHES
    rl.max_burst_size = max(1, min(MAX_BURST_SIZE, math.ceil(rl.max_dispatches_per_second)))
    q.rate_limits = rl
    return q


def validate_new_task(parent: str, task: tasks_v2.Task, now: float) -> None:
    if task.name:
        match = _TASK_NAME_RE.match(task.name)
        if not match:
            raise invalid_argument(
                "task.name must look like projects/PROJECT/locations/LOCATION/queues/QUEUE/"
                "tasks/TASK_ID (TASK_ID: letters, digits, hyphens, underscores, at most 500), "
                f"got {task.name!r}"
            )
        if match.group(1) != parent:
            raise invalid_argument(f"task.name {task.name!r} is not in queue {parent!r}")
    if "app_engine_http_request" in task:
        raise RpcError(
            grpc.StatusCode.UNIMPLEMENTED, "the emulator supports only http_request tasks"
        )
    if "http_request" not in task or not task.http_request.url:
        raise invalid_argument("task.http_request.url is required")
    http = task.http_request
    if not http.url.startswith(("http://", "https://")):
        raise invalid_argument(f"task.http_request.url must be an http(s) URL, got {http.url!r}")
    method = tasks_v2.HttpMethod(http.http_method).name
    if http.body and method not in _BODY_METHODS | {"HTTP_METHOD_UNSPECIFIED"}:
        raise invalid_argument(f"a body is allowed only with POST, PUT or PATCH, not {method}")
    if "oidc_token" in http and "oauth_token" in http:
        raise invalid_argument("set at most one of oidc_token and oauth_token")
    if "oidc_token" in http and not http.oidc_token.service_account_email:
        raise invalid_argument("oidc_token.service_account_email is required")
    if tasks_v2.Task.pb(task).ByteSize() > MAX_TASK_SIZE:
        raise invalid_argument(f"task is larger than the {MAX_TASK_SIZE} bytes limit")
    if "dispatch_deadline" in task:
        deadline = seconds(task.dispatch_deadline)
        if deadline <= 0 or deadline > MAX_DISPATCH_DEADLINE:
            raise invalid_argument(f"dispatch_deadline must be in (0, {MAX_DISPATCH_DEADLINE:g}s]")
    if "schedule_time" in task and to_epoch(task.schedule_time) > now + MAX_SCHEDULE_AHEAD:
        raise invalid_argument("schedule_time must be at most 30 days in the future")
    for output_only in ("create_time", "first_attempt", "last_attempt"):
        if output_only in task:
            delattr(task, output_only)


def updated_queue(
    existing: tasks_v2.Queue, queue: tasks_v2.Queue, mask_paths: list[str]
) -> tasks_v2.Queue:
    """``existing`` with the fields of ``queue`` that ``mask_paths`` names (all settings when
    empty), validated and completed like a new queue."""
    mask = field_mask_pb2.FieldMask(paths=mask_paths)
    target = tasks_v2.Queue.pb(copy_queue(existing))
    source = tasks_v2.Queue.pb(queue)
    if mask_paths:
        mask.MergeMessage(source, target, replace_message_field=True)
    else:
        for field_name in ("rate_limits", "retry_config", "stackdriver_logging_config"):
            target.ClearField(field_name)
            if source.HasField(field_name):
                getattr(target, field_name).CopyFrom(getattr(source, field_name))
    updated = normalized_queue(tasks_v2.Queue.wrap(target))
    if "purge_time" in existing:
        updated.purge_time = existing.purge_time
    return updated


def check_update_mask(mask_paths: list[str]) -> None:
    if not mask_paths:
        return
    mask = field_mask_pb2.FieldMask(paths=mask_paths)
    if not mask.IsValidForDescriptor(tasks_v2.Queue.pb().DESCRIPTOR):
        raise invalid_argument(f"invalid update_mask {mask_paths!r}")
    output_only = {"name", "state", "purge_time", "rate_limits.max_burst_size"}
    if output_only & set(mask_paths):
        raise invalid_argument(
            f"update_mask may not name output-only fields: {sorted(output_only)}"
        )
