"""Leanplum REST client: start a CSV import job and poll it.

Error tree::

    LeanplumError(status, message)
    ├── AuthFailed          401/403 or "Invalid access key": fix the keys, never retried
    ├── RequestRejected     another 4xx, or a 200 whose element carries an error/warning
    ├── RateLimited         429 (retried, then raised)
    ├── ServerError         5xx (retried, then raised)
    ├── ConnectionFailed    the request never reached Leanplum (retried, then raised)
    └── AnswerLost          the request was sent but no answer came back: for ``multi`` the job
                            may or may not exist, so it is never resent blindly

Retries: transport errors, 429 and 5xx, with exponential backoff and full jitter, bounded by
:attr:`LeanplumClient.MAX_RETRIES`. Leanplum sends no ``Retry-After``. ``getMultiResults`` is a
read and is retried on any of these. ``multi`` with ``createJob`` is not idempotent: it is
retried only when Leanplum answered (429/5xx mean no job was made) or when the connection
could not be opened; a timeout or reset after the request went out raises :class:`AnswerLost`.

The client key travels in the POST body (never in a URL that might be logged), and messages
of errors never quote the key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from functions.errors import ImporterError
from functions.logs import register_secret, warning

API_VERSION = "1.0.6"


class LeanplumError(ImporterError):
    """Leanplum refused or could not be reached. ``status`` is the HTTP status, 0 if none."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AuthFailed(LeanplumError):
    pass


class RequestRejected(LeanplumError):
    pass


class RateLimited(LeanplumError):
    pass


class ServerError(LeanplumError):
    pass


class ConnectionFailed(LeanplumError):
    pass


class AnswerLost(LeanplumError):
    pass


@dataclass(frozen=True)
class JobStatus:
    """What ``getMultiResults`` says about a job."""

    state: str
    successes: int | None = None
    failures: int | None = None
    files: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.state in ("PENDING", "RUNNING")


def _first_element(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        response = body.get("response")
        if isinstance(response, list) and response and isinstance(response[0], dict):
            return response[0]
    return {}


def _element_problem(element: Mapping[str, Any]) -> str | None:
    """The error or warning message a reply element carries, or ``None`` for a clean success."""
    for key in ("error", "warning"):
        problem = element.get(key)
        if problem:
            if isinstance(problem, dict):
                return str(problem.get("message") or problem)
            return str(problem)
    if element.get("success") is False:
        return "success=false"
    return None


class LeanplumClient:
    """One ``requests.Session`` with a (connect, read) timeout on every call."""

    MAX_RETRIES = 5
    INITIAL_DELAY_SECONDS = 2.0
    MAX_DELAY_SECONDS = 30.0
    TIMEOUT = (10.0, 60.0)

    def __init__(
        self,
        api_url: str,
        app_id: str,
        dev_key: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float], float] | None = None,
    ) -> None:
        register_secret(dev_key)
        self.api_url = api_url
        self._app_id = app_id
        self._dev_key = dev_key
        self._session = session or requests.Session()
        self._sleep = sleep
        self._jitter = jitter or (lambda delay: random.uniform(0, delay))

    def close(self) -> None:
        self._session.close()

    # -- decisions, kept apart from the loop so tests can pin them ---------------------------
    def _sleep_time_seconds(self, attempt: int) -> float:
        """Exponential backoff (2 s, 4 s, 8 s ... capped) with full jitter, never below 10%."""
        delay = min(self.INITIAL_DELAY_SECONDS * (2**attempt), self.MAX_DELAY_SECONDS)
        return float(max(self._jitter(delay), delay * 0.1))

    @staticmethod
    def _error_for(status: int, body: Any) -> LeanplumError:
        message = _element_problem(_first_element(body)) or f"HTTP {status}"
        if status == 429:
            return RateLimited(f"rate limited: {message}", status)
        if status >= 500:
            return ServerError(f"server error {status}: {message}", status)
        if status in (401, 403) or "access key" in message.lower():
            return AuthFailed(f"authentication failed: {message}", status)
        return RequestRejected(f"request rejected ({status}): {message}", status)

    # -- the loop ---------------------------------------------------------------------------
    def _call(self, method: str, action: str, params: dict[str, str], *, idempotent: bool) -> Any:
        payload = {
            "appId": self._app_id,
            "clientKey": self._dev_key,
            "apiVersion": API_VERSION,
            "action": action,
            **params,
        }
        attempt = 0
        while True:
            error: LeanplumError
            try:
                if method == "GET":
                    # getMultiResults is documented as GET; the key must then be in the query.
                    response = self._session.get(self.api_url, params=payload, timeout=self.TIMEOUT)
                else:
                    response = self._session.post(
                        self.api_url, params={"action": action}, data=payload, timeout=self.TIMEOUT
                    )
            except requests.ConnectionError as exc:
                sent = _was_sent(exc)
                if sent and not idempotent:
                    raise AnswerLost(
                        f"{action}: the request was sent but the connection broke before an answer"
                    ) from None
                error = ConnectionFailed(f"{action}: cannot reach Leanplum ({type(exc).__name__})")
            except requests.Timeout:
                if not idempotent:
                    raise AnswerLost(f"{action}: no answer within {self.TIMEOUT[1]} s") from None
                error = ConnectionFailed(f"{action}: timed out")
            else:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if response.ok:
                    return body
                error = self._error_for(response.status_code, body)
                if not isinstance(error, RateLimited | ServerError):
                    raise error
            if attempt >= self.MAX_RETRIES:
                raise error
            delay = self._sleep_time_seconds(attempt)
            warning(
                f"Leanplum {action}: retry {attempt + 1} after {delay:.1f} s",
                step="leanplum_retry",
                reason=error.message,
                http_status=error.status,
            )
            self._sleep(delay)
            attempt += 1

    # -- the two calls the importer makes ---------------------------------------------------
    def start_import(self, bucket: str, file: str) -> str:
        """Start a ``multi`` CSV job over ``gs://bucket/file``; returns the job id."""
        body = self._call(
            "POST",
            "multi",
            {"createJob": "true", "gcsBucket": bucket, "file": file, "defaultAction": "track"},
            idempotent=False,
        )
        element = _first_element(body)
        problem = _element_problem(element)
        if problem:
            raise RequestRejected(f"multi: Leanplum refused the job: {problem}", 200)
        job_id = element.get("jobId")
        if not job_id:
            raise RequestRejected("multi: Leanplum's answer carries no jobId", 200)
        return str(job_id)

    def job_status(self, job_id: str) -> JobStatus:
        """``getMultiResults`` for one job. ``files`` is read from ``data`` or the element."""
        body = self._call("GET", "getMultiResults", {"jobId": job_id}, idempotent=True)
        element = _first_element(body)
        if not element.get("state") and (element.get("success") is False or element.get("error")):
            # An error without a job state is about the request (unknown job id, ...); with a
            # state it is the job's own failure reason, reported in the status below.
            raise RequestRejected(
                f"getMultiResults: {_element_problem(element) or 'unknown error'}", 200
            )
        data = element.get("data") if isinstance(element.get("data"), dict) else {}
        assert isinstance(data, dict)
        files = data.get("files") or element.get("files") or []
        state = str(element.get("state") or data.get("state") or "UNKNOWN").upper()
        error = element.get("error") or data.get("error")
        return JobStatus(
            state=state,
            successes=_int_or_none(data.get("successesCount", element.get("successesCount"))),
            failures=_int_or_none(data.get("failuresCount", element.get("failuresCount"))),
            files=[str(url) for url in files],
            error=str(error.get("message") if isinstance(error, dict) else error)
            if error
            else None,
        )

    def download_results(self, url: str) -> bytes:
        """One results file (JSON lines), retried like a read."""
        attempt = 0
        while True:
            try:
                response = self._session.get(url, timeout=self.TIMEOUT)
                if response.ok:
                    return response.content
                error: LeanplumError = self._error_for(response.status_code, None)
                if not isinstance(error, RateLimited | ServerError):
                    raise error
            except (requests.ConnectionError, requests.Timeout):
                error = ConnectionFailed("results file: cannot reach the server")
            if attempt >= self.MAX_RETRIES:
                raise error
            self._sleep(self._sleep_time_seconds(attempt))
            attempt += 1


def _was_sent(exc: requests.ConnectionError) -> bool:
    """Whether a connection error happened after the request went out.

    urllib3 wraps a connection that could not be opened in ``MaxRetryError`` whose ``reason`` is
    a ``NewConnectionError`` or ``ConnectTimeoutError``: the request never left. A reset or close
    while waiting for the answer arrives as ``ProtocolError``: it may have had its effect.
    """
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return not isinstance(cause, NewConnectionError | ConnectTimeoutError)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
