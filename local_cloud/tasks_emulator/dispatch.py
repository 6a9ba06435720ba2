"""One HTTP attempt of a Cloud Tasks task: the request it sends and what its answer records.

The backend prepares an attempt under its lock (:func:`start_attempt`: the headers Cloud Tasks
adds, the counters it bumps), a dispatch thread sends it without the lock (:func:`send`, with an
OIDC-shaped bearer token when the task asks for one), and the backend records the outcome under
the lock again (:func:`record_outcome`: response counts and ``last_attempt.response_status``
with the RPC code Cloud Tasks reports for the HTTP status).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from google.cloud import tasks_v2
from google.rpc import code_pb2, status_pb2

from local_cloud.grpc_common import seconds, to_datetime
from local_cloud.tasks_emulator.oidc import make_oidc_token
from local_cloud.tasks_emulator.state import QueueState, TaskState

# Headers the real service computes itself or reserves; values set on the task are ignored.
_RESERVED_HEADER_PREFIXES = ("x-google-", "x-appengine-", "x-cloudtasks-")
_RESERVED_HEADERS = {"host", "content-length", "user-agent"}

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


@dataclass
class Job:
    """One HTTP attempt, prepared under the lock and executed by a dispatch thread."""

    queue_state: QueueState
    task_state: TaskState
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    oidc_email: str | None
    oidc_audience: str
    oauth: bool


@dataclass
class Outcome:
    status: int | None
    error: str | None
    response_time: float


def _rpc_status(outcome: Outcome) -> status_pb2.Status:
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


def start_attempt(qs: QueueState, ts: TaskState, now: float) -> Job:
    """Mark ``ts`` running in ``qs`` and prepare its HTTP attempt (caller holds the lock)."""
    task = ts.task
    ts.running = True
    ts.version += 1  # invalidates heap entries of this task
    qs.in_flight += 1
    if ts.first_attempt_at is None:
        ts.first_attempt_at = now
        task.first_attempt = tasks_v2.Attempt(dispatch_time=to_datetime(now))
    task.last_attempt = tasks_v2.Attempt(
        schedule_time=to_datetime(ts.schedule), dispatch_time=to_datetime(now)
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
    return Job(
        queue_state=qs,
        task_state=ts,
        method=method,
        url=http.url,
        headers=headers,
        body=bytes(http.body),
        timeout=seconds(task.dispatch_deadline),
        oidc_email=oidc_email,
        oidc_audience=http.oidc_token.audience or http.url,
        oauth="oauth_token" in http,
    )


def send(session: requests.Session, job: Job) -> Outcome:
    """Send one attempt; a timeout or connection error is an outcome without status."""
    headers = dict(job.headers)
    if job.oidc_email is not None:
        headers["Authorization"] = "Bearer " + make_oidc_token(job.oidc_email, job.oidc_audience)
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
        return Outcome(status=response.status_code, error=None, response_time=time.time())
    except requests.Timeout:
        return Outcome(
            status=None,
            error=f"dispatch deadline of {job.timeout:g}s exceeded (timed out)",
            response_time=time.time(),
        )
    except requests.RequestException as exc:
        return Outcome(status=None, error=f"{type(exc).__name__}: {exc}", response_time=time.time())


def record_outcome(ts: TaskState, outcome: Outcome) -> None:
    """Count ``outcome`` on the task and store it as its last attempt's response."""
    ts.running = False
    task = ts.task
    if outcome.status is not None:
        task.response_count += 1
        ts.previous_response = outcome.status
        if outcome.status < 500:
            ts.non_5xx_responses += 1
    attempt = task.last_attempt
    attempt.response_time = to_datetime(outcome.response_time)
    attempt.response_status = _rpc_status(outcome)
    task.last_attempt = attempt
