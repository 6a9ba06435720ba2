"""Leanplum REST client: start a CSV import job, poll it, download its results files.

Error tree::

    LeanplumError(message, status, body_excerpt)
    ├── AuthFailed          401/403 or "Invalid access key": fix the keys, never retried
    ├── RequestRejected     another 4xx, or a 200 whose element carries an error/warning
    ├── RateLimited         429 (retried, then raised)
    ├── ServerError         5xx (retried, then raised)
    ├── ConnectionFailed    the request never reached Leanplum (retried, then raised)
    └── AnswerLost          the request was sent but no answer came back: for ``multi`` the job
                            may or may not exist, so it is never resent (reads are retried)

One send loop (:meth:`LeanplumClient._send`) serves every call; whether to try again is
decided apart, in :meth:`LeanplumClient._should_retry`, and how long to wait in
:meth:`LeanplumClient._sleep_time_seconds` (exponential backoff with jitter; Leanplum sends no
``Retry-After``), bounded by :attr:`LeanplumClient.MAX_RETRIES`. ``getMultiResults`` and the
results-file downloads are reads: retried after any transport error, 429 or 5xx. ``multi``
with ``createJob`` is not idempotent: retried only when Leanplum answered 429/5xx (no job was
made) or when the connection could not be opened; a timeout or reset after the request went
out raises :class:`AnswerLost`.

Reply elements are read by :mod:`functions.leanplum_replies`, the same rule the results-file
join uses. Bodies are JSON, as Leanplum documents them. The key travels only in POST bodies
(``getMultiResults`` too, though documented as a GET), never in a URL; no message quotes a URL
or a library's exception text, and every message and body excerpt goes through
:func:`functions.logs.redact`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import requests
from requests.exceptions import ChunkedEncodingError
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from functions.errors import ImporterError
from functions.leanplum_replies import element_problem, first_element, message_of
from functions.logs import redact, register_secret, warning

API_VERSION = "1.0.6"  # the version the CSV import is documented with

# Enough of a reply body to recognise it in a log line, not a whole HTML error page.
BODY_EXCERPT_CHARS = 200

HTTP_TOO_MANY_REQUESTS = 429  # concurrent requests for one user, or a rate limit: retried
FIRST_SERVER_ERROR = 500  # 5xx: Leanplum did not act on the request: retried
AUTH_STATUSES = (401, 403)  # a wrong or wrong-class key: retrying cannot help
AUTH_HINT = "access key"  # Leanplum's words for a bad key ("Invalid access key"), any status

RUNNING_STATES = ("PENDING", "RUNNING")  # documented states of a job still at work
UNKNOWN_STATE = "UNKNOWN"  # no state in the reply: treated as terminal, like FAILED


class LeanplumError(ImporterError):
    """Leanplum refused or could not be reached.

    ``status`` is the HTTP status (0 if no answer came), ``body_excerpt`` the first
    :data:`BODY_EXCERPT_CHARS` characters of the reply body (``None`` if none), both redacted.
    """

    def __init__(self, message: str, status: int = 0, body_excerpt: str | None = None) -> None:
        self.message = redact(message)
        super().__init__(self.message)
        self.status = status
        self.body_excerpt = None if body_excerpt is None else _excerpt(body_excerpt)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status}, "
            f"body_excerpt={self.body_excerpt!r})"
        )


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
        return self.state in RUNNING_STATES


class LeanplumClient:
    """One ``requests.Session`` with a (connect, read) timeout on every call."""

    # 2+4+8+16+30 s of backoff and six read timeouts stay within the ingest function's
    # 540 s lease; a longer outage is left to Eventarc's or Cloud Tasks' own retries.
    MAX_RETRIES = 5
    INITIAL_DELAY_SECONDS = 2.0  # Leanplum's advice: "about 2 s, 4 s, 8 s ..."
    MAX_DELAY_SECONDS = 30.0  # one wait never exceeds this, however many retries
    MIN_DELAY_FRACTION = 0.1  # jitter never brings a wait below 10% of the backoff
    # Connect: a reachable server opens a socket in well under 10 s. Read: ``multi`` only
    # queues the job and a results file is a few MB, so 60 s means the answer is lost.
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

    def __enter__(self) -> LeanplumClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the three calls the importer makes -------------------------------------------------
    def start_import(self, bucket: str, file: str, *, retry: bool = True) -> str:
        """Start a ``multi`` CSV job over ``gs://bucket/file``; returns the job id.

        ``retry=False``: one request, whatever the answer. The importer's job start uses it,
        so that it neither holds a job slot nor stays in JOB_STARTING (where a crash cannot
        tell whether a job exists) while it sleeps between tries: the start queue waits.
        """
        params = {"createJob": "true", "gcsBucket": bucket, "file": file, "defaultAction": "track"}
        response = self._send(
            "multi",
            "POST",
            self.api_url,
            params={"action": "multi"},
            body=self._payload("multi", params),
            idempotent=False,
            max_retries=None if retry else 0,
        )
        element = first_element(_json(response))
        problem = element_problem(element)
        if problem:
            raise _reply_error(f"multi: Leanplum refused the job: {problem}", response)
        job_id = element.get("jobId")
        if not job_id:
            raise RequestRejected(
                "multi: Leanplum's answer carries no jobId", response.status_code, response.text
            )
        return str(job_id)

    def job_status(self, job_id: str) -> JobStatus:
        """``getMultiResults`` for one job. Counts and ``files`` are read from ``data`` or the
        element itself; an error without a job state is about the request and raises."""
        # Documented as a GET, but Leanplum's API takes every action as a POST too: the key
        # then travels in the body, never in a URL that proxies and access logs keep.
        response = self._send(
            "getMultiResults",
            "POST",
            self.api_url,
            params={"action": "getMultiResults"},
            body=self._payload("getMultiResults", {"jobId": job_id}),
            idempotent=True,
        )
        element = first_element(_json(response))
        found = element.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        state = element.get("state") or data.get("state")
        problem = element_problem(element)
        if not state and problem:
            # Unknown job id, refused request...: with a state, an error is the job's own.
            raise _reply_error(f"getMultiResults: {problem}", response)
        error = element.get("error") or data.get("error")
        return JobStatus(
            state=str(state or UNKNOWN_STATE).upper(),
            successes=_int_or_none(data.get("successesCount", element.get("successesCount"))),
            failures=_int_or_none(data.get("failuresCount", element.get("failuresCount"))),
            files=_urls(data.get("files") or element.get("files")),
            error=message_of(error) if error else None,
        )

    def download_results(self, url: str) -> bytes:
        """One results file (JSON lines), retried like a read."""
        return self._send("results file", "GET", url, idempotent=True).content

    # -- the one send loop ------------------------------------------------------------------
    def _payload(self, action: str, params: dict[str, str]) -> dict[str, str]:
        return {
            "appId": self._app_id,
            "clientKey": self._dev_key,
            "apiVersion": API_VERSION,
            "action": action,
            **params,
        }

    def _send(
        self,
        what: str,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        idempotent: bool,
        max_retries: int | None = None,
    ) -> requests.Response:
        """Send until a 2xx/3xx answer or an error :meth:`_should_retry` refuses to retry.

        A ``body`` goes as ``application/json``, one of the two body types Leanplum's API
        reference documents (the other is multipart/form-data); form-urlencoded is not one.
        """
        attempt = 0
        while True:
            error: LeanplumError
            try:
                response = self._session.request(
                    method, url, params=params, json=body, timeout=self.TIMEOUT
                )
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                error = _transport_error(what, exc)
            else:
                if response.ok:
                    return response
                error = _status_error(what, response)
            if not self._should_retry(error, attempt, idempotent=idempotent) or (
                max_retries is not None and attempt >= max_retries
            ):
                raise error
            delay = self._sleep_time_seconds(attempt)
            warning(
                f"Leanplum {what}: retry {attempt + 1} after {delay:.1f} s",
                step="leanplum_retry",
                reason=error.message,
                http_status=error.status,
            )
            self._sleep(delay)
            attempt += 1

    # -- decisions, kept apart from the loop so tests can pin them ---------------------------
    def _should_retry(self, error: LeanplumError, attempt: int, *, idempotent: bool) -> bool:
        """Whether a call that failed with ``error`` on try ``attempt`` (0-based) goes again.

        429, 5xx and a connection never opened: yes (nothing happened at Leanplum). An answer
        lost after sending: only for an idempotent call. Anything else: never.
        """
        if attempt >= self.MAX_RETRIES:
            return False
        if isinstance(error, RateLimited | ServerError | ConnectionFailed):
            return True
        if isinstance(error, AnswerLost):
            return idempotent
        return False

    def _sleep_time_seconds(self, attempt: int) -> float:
        """Exponential backoff (2 s, 4 s, 8 s ... capped) with jitter, never below 10%."""
        delay = min(self.INITIAL_DELAY_SECONDS * (2**attempt), self.MAX_DELAY_SECONDS)
        jittered = min(self._jitter(delay), delay)
        return float(max(jittered, delay * self.MIN_DELAY_FRACTION))


# -- errors mapped once ---------------------------------------------------------------------
def _transport_error(what: str, exc: requests.RequestException) -> LeanplumError:
    """``ConnectionFailed`` if the request provably never left, else ``AnswerLost``.

    Only the exception's type is quoted: its text may hold a URL with the key in it.
    """
    kind = type(exc).__name__
    if _never_sent(exc):
        return ConnectionFailed(f"{what}: cannot reach Leanplum ({kind})")
    if isinstance(exc, requests.Timeout):
        return AnswerLost(f"{what}: no answer within {LeanplumClient.TIMEOUT[1]:g} s ({kind})")
    return AnswerLost(f"{what}: the connection broke before an answer came ({kind})")


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the connection could not be opened, so the request never left.

    urllib3 wraps a connection that could not be opened in ``MaxRetryError`` whose ``reason`` is
    a ``NewConnectionError`` (refused, DNS) or ``ConnectTimeoutError``; requests raises
    ``ConnectTimeout`` for the latter. A reset or close while waiting for the answer arrives as
    ``ProtocolError``, a slow answer as ``ReadTimeout``, a body cut short as
    ``ChunkedEncodingError``: those may have had their effect.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, NewConnectionError | ConnectTimeoutError)


def _status_error(what: str, response: requests.Response) -> LeanplumError:
    """The error for a 4xx/5xx answer, with Leanplum's own message when it sent one."""
    status = response.status_code
    element = first_element(_json(response))
    message = (element_problem(element) if element else None) or f"HTTP {status}"
    if status == HTTP_TOO_MANY_REQUESTS:
        return RateLimited(f"{what}: rate limited: {message}", status, response.text)
    if status >= FIRST_SERVER_ERROR:
        return ServerError(f"{what}: server error {status}: {message}", status, response.text)
    if status in AUTH_STATUSES or AUTH_HINT in message.lower():
        return AuthFailed(f"{what}: authentication failed: {message}", status, response.text)
    return RequestRejected(f"{what}: request rejected ({status}): {message}", status, response.text)


def _reply_error(message: str, response: requests.Response) -> LeanplumError:
    """The error for a 2xx answer whose element carries a problem."""
    kind = AuthFailed if AUTH_HINT in message.lower() else RequestRejected
    return kind(message, response.status_code, response.text)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _excerpt(body: str) -> str:
    """Redact first, then cut: a key split by the cut could not be recognised any more."""
    return redact(body)[:BODY_EXCERPT_CHARS]


def _urls(files: Any) -> list[str]:
    if isinstance(files, str):
        return [files]
    if isinstance(files, list):
        return [str(url) for url in files]
    return []


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None
