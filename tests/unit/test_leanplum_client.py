"""The Leanplum client against a fake transport scripted per call (a reply, or the exception
requests raises): what it sent, how long it waited, what it returned or raised. No network."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from functions.leanplum import (
    BODY_EXCERPT_CHARS,
    AnswerLost,
    AuthFailed,
    ConnectionFailed,
    JobStatus,
    LeanplumClient,
    LeanplumError,
    RateLimited,
    RequestRejected,
    ServerError,
)

API = "https://leanplum.test/api"
APP = "app_unit"
KEY = "dev_key_unit_SECRET_7f3a"
RESULTS = "https://files.test/results/0.json"
RETRIES = LeanplumClient.MAX_RETRIES
BACKOFF = [2.0, 4.0, 8.0, 16.0, 30.0]  # with jitter=float (the identity): exponential, capped
JOB = {"response": [{"success": True, "jobId": "job-1"}]}

Reply = tuple[int, Any]
Step = Reply | BaseException


# What requests raises when a connection cannot be opened, is reset after sending, is slow to
# answer or cuts the body short; the key is in URLs and texts, as it would be for a GET.
def refused() -> requests.ConnectionError:
    url = f"/api?clientKey={KEY}"
    return requests.ConnectionError(MaxRetryError(None, url, NewConnectionError(None, "refused")))  # type: ignore[arg-type]


def connect_timeout() -> requests.ConnectTimeout:
    return requests.ConnectTimeout(MaxRetryError(None, "/api", ConnectTimeoutError("slow")))  # type: ignore[arg-type]


def reset() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(KEY)))


def read_timeout() -> requests.ReadTimeout:
    return requests.ReadTimeout(ReadTimeoutError(None, f"/api?clientKey={KEY}", "timed out"))  # type: ignore[arg-type]


def cut_short() -> requests.exceptions.ChunkedEncodingError:
    return requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken"))


class FakeTransport(BaseAdapter):
    """Answers each request with the next scripted step; records requests and timeouts."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = list(steps)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []
        self.closed = False

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        response = requests.Response()
        response.status_code, body = step
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        self.closed = True


def make(*steps: Step, jitter: Any = float) -> tuple[LeanplumClient, FakeTransport, list[float]]:
    transport = FakeTransport(list(steps))
    session = requests.Session()
    session.mount("https://", transport)
    sleeps: list[float] = []
    client = LeanplumClient(API, APP, KEY, session=session, sleep=sleeps.append, jitter=jitter)
    return client, transport, sleeps


def form(request: requests.PreparedRequest, part: str = "body") -> dict[str, str]:
    """The query string's parameters, or the JSON body's (the only body type sent)."""
    if part == "query":
        return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}
    assert request.headers["Content-Type"] == "application/json"
    body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
    parsed: dict[str, str] = json.loads(body)
    return parsed


def element(**fields: Any) -> dict[str, Any]:
    return {"response": [fields]}


def fail(message: str) -> dict[str, Any]:
    return element(success=False, error={"message": message})


def no_key_anywhere(error: LeanplumError) -> None:
    for text in (str(error), error.message, error.body_excerpt or "", repr(error)):
        assert KEY not in text
    assert error.__cause__ is None


# -- what each call sends ---------------------------------------------------------------------
CALLS: dict[str, Any] = {
    "multi": lambda client: client.start_import("b", "f.csv"),
    "poll": lambda client: client.job_status("j"),
    "download": lambda client: client.download_results(RESULTS),
}
ANSWERS: dict[str, tuple[Reply, Any]] = {
    "multi": ((200, JOB), "job-1"),
    "poll": ((200, element(success=True, state="RUNNING")), JobStatus("RUNNING")),
    "download": ((200, b"{}\n"), b"{}\n"),
}


def test_start_import_posts_a_documented_json_body_once_and_returns_the_job_id() -> None:
    client, transport, sleeps = make((200, JOB))
    assert client.start_import("bucket", "in/a.csv") == "job-1"
    [request] = transport.sent
    assert request.method == "POST"
    assert form(request, "query") == {"action": "multi"}  # the key stays out of the URL
    assert form(request) == {
        "appId": APP, "clientKey": KEY, "apiVersion": "1.0.6", "action": "multi",
        "createJob": "true", "gcsBucket": "bucket", "file": "in/a.csv", "defaultAction": "track",
    }  # fmt: skip
    assert (transport.timeouts, sleeps) == ([LeanplumClient.TIMEOUT], [])


def test_job_status_posts_with_the_key_in_the_body_never_in_the_url() -> None:
    client, transport, _ = make((200, element(success=True, state="RUNNING", jobId="j")))
    assert client.job_status("j") == JobStatus(state="RUNNING")
    assert [request.method for request in transport.sent] == ["POST"]
    assert KEY not in (transport.sent[0].url or "")
    assert form(transport.sent[0], "query") == {"action": "getMultiResults"}
    assert form(transport.sent[0], "body") == {
        "appId": APP, "clientKey": KEY, "apiVersion": "1.0.6",
        "action": "getMultiResults", "jobId": "j",
    }  # fmt: skip


def test_download_results_returns_the_bytes_untouched() -> None:
    client, transport, sleeps = make((200, b'{"success":true}\n{"success":false}\n'))
    assert client.download_results(RESULTS) == b'{"success":true}\n{"success":false}\n'
    assert [r.url for r in transport.sent] == [RESULTS]  # no key sent to a file server
    assert (transport.timeouts, sleeps) == ([LeanplumClient.TIMEOUT], [])


# -- the retry decision, per call -------------------------------------------------------------
LOST = [pytest.param(reset, id="reset-after-send"), pytest.param(read_timeout, id="read-timeout"),
        pytest.param(cut_short, id="body-cut-short")]  # fmt: skip
TRANSIENT = [pytest.param(lambda: (429, fail("Too many requests")), id="429"),
             pytest.param(lambda: (500, b"oops"), id="500"),
             pytest.param(lambda: (503, fail("Unavailable")), id="503"),
             pytest.param(refused, id="connection-refused"),
             pytest.param(connect_timeout, id="connect-timeout")]  # fmt: skip


@pytest.mark.parametrize("lost", LOST)
def test_multi_is_never_resent_after_a_lost_answer(lost: Any) -> None:
    client, transport, sleeps = make(lost(), (200, JOB))
    with pytest.raises(AnswerLost) as caught:
        client.start_import("b", "f.csv")
    assert (len(transport.sent), sleeps) == (1, [])
    assert (caught.value.status, caught.value.body_excerpt) == (0, None)
    no_key_anywhere(caught.value)


@pytest.mark.parametrize("call", ["poll", "download"])
@pytest.mark.parametrize("lost", LOST)
def test_a_read_is_retried_after_a_lost_answer(call: str, lost: Any) -> None:
    reply, expected = ANSWERS[call]
    client, transport, sleeps = make(lost(), reply)
    assert CALLS[call](client) == expected
    assert (len(transport.sent), sleeps) == (2, BACKOFF[:1])


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("transient", TRANSIENT)
def test_every_call_is_retried_after_429_5xx_or_a_connection_never_opened(
    call: str, transient: Any
) -> None:
    reply, expected = ANSWERS[call]
    client, transport, sleeps = make(transient(), transient(), reply)
    assert CALLS[call](client) == expected
    assert (len(transport.sent), sleeps) == (3, BACKOFF[:2])


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("transient", "error", "status"),
    [pytest.param(lambda: (429, fail("slow down")), RateLimited, 429, id="429"),
     pytest.param(lambda: (502, b"<html>bad gateway</html>"), ServerError, 502, id="5xx"),
     pytest.param(refused, ConnectionFailed, 0, id="refused"),
     pytest.param(read_timeout, AnswerLost, 0, id="lost")],
)  # fmt: skip
def test_retries_are_bounded_then_the_last_error_is_raised(
    call: str, transient: Any, error: type[LeanplumError], status: int
) -> None:
    client, transport, sleeps = make(*[transient() for _ in range(RETRIES + 1)])
    with pytest.raises(error) as caught:
        CALLS[call](client)
    expected = 1 if call == "multi" and error is AnswerLost else RETRIES + 1
    assert len(transport.sent) == expected
    assert sleeps == BACKOFF[: expected - 1]
    assert caught.value.status == status
    no_key_anywhere(caught.value)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("reply", "error"),
    [pytest.param((401, b""), AuthFailed, id="401-empty"),
     pytest.param((403, fail("Development key required")), AuthFailed, id="403"),
     pytest.param((400, fail(f"Invalid access key {KEY}")), AuthFailed, id="400-invalid-key"),
     pytest.param((400, fail("File not found")), RequestRejected, id="400"),
     pytest.param((404, b"<Error>NoSuchKey</Error>"), RequestRejected, id="404-not-json")],
)  # fmt: skip
def test_a_4xx_is_never_retried(call: str, reply: Reply, error: type[LeanplumError]) -> None:
    client, transport, sleeps = make(reply, ANSWERS[call][0])
    with pytest.raises(error) as caught:
        CALLS[call](client)
    assert type(caught.value) is error
    assert (len(transport.sent), sleeps) == (1, [])
    assert caught.value.status == reply[0]
    body = reply[1] if isinstance(reply[1], bytes) else json.dumps(reply[1]).encode()
    assert caught.value.body_excerpt == body.decode().replace(KEY, "***")
    no_key_anywhere(caught.value)


# -- what a 200 to multi or getMultiResults means ---------------------------------------------
@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [pytest.param(element(success=True, warning={"message": "Skipped: limits"}), RequestRejected,
                  "Skipped: limits", id="warning"),
     pytest.param(fail("Bad file"), RequestRejected, "Bad file", id="error"),
     pytest.param(fail("Invalid access key"), AuthFailed, "Invalid access key", id="bad-key"),
     pytest.param(element(success=False), RequestRejected, "success=false", id="success-false"),
     pytest.param(element(jobId="j"), RequestRejected, "no success flag", id="no-success"),
     pytest.param(element(success=True), RequestRejected, "no jobId", id="without-jobId"),
     pytest.param(b"<html>", RequestRejected, "no success flag", id="not-json"),
     pytest.param(fail(f"Unknown key {KEY}"), RequestRejected, r"job: Unknown key \*\*\*$",
                  id="key-echoed-is-masked")],
)  # fmt: skip
def test_a_200_to_multi_that_is_not_a_clean_job_is_refused(
    reply: Any, error: type[LeanplumError], words: str
) -> None:
    client, transport, sleeps = make((200, reply), (200, JOB))
    with pytest.raises(error, match=words) as caught:
        client.start_import("b", "f.csv")
    assert type(caught.value) is error
    assert (len(transport.sent), sleeps) == (1, [])
    assert caught.value.status == 200
    body = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
    assert caught.value.body_excerpt == body.decode().replace(KEY, "***")
    no_key_anywhere(caught.value)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [pytest.param(
        element(success=True, state="FINISHED",
                data={"successesCount": 3, "failuresCount": 1, "files": [RESULTS]}),
        JobStatus("FINISHED", 3, 1, [RESULTS]), id="counts-in-data"),
     pytest.param(
        element(success=True, state="FINISHED", successesCount="2", failuresCount=0,
                files=[RESULTS]),
        JobStatus("FINISHED", 2, 0, [RESULTS]), id="counts-in-element"),
     pytest.param(element(success=True, data={"state": "finished", "files": RESULTS}),
                  JobStatus("FINISHED", files=[RESULTS]), id="state-in-data-files-a-string"),
     pytest.param(element(success=True, state="PENDING", successesCount=None, files=7),
                  JobStatus("PENDING"), id="pending-no-counts"),
     pytest.param(element(success=True, successesCount="many"),
                  JobStatus("UNKNOWN"), id="state-missing"),
     pytest.param(element(success=True, state="FAILED", error={"message": "File not found"}),
                  JobStatus("FAILED", error="File not found"), id="failed-error-object"),
     pytest.param(element(success=False, state="FAILED", data={"error": "bad header"}),
                  JobStatus("FAILED", error="bad header"), id="failed-error-in-data")],
)  # fmt: skip
def test_job_status_reads_every_documented_shape(reply: Any, expected: JobStatus) -> None:
    client, _, _ = make((200, reply))
    status = client.job_status("j")
    assert status == expected
    assert status.running is (expected.state in ("PENDING", "RUNNING"))


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [pytest.param(fail("Job not found"), RequestRejected, "Job not found", id="error-no-state"),
     pytest.param(element(success=False), RequestRejected, "success=false", id="false-no-state"),
     pytest.param({"response": []}, RequestRejected, "no success flag", id="empty-response"),
     pytest.param(fail("Invalid access key"), AuthFailed, "Invalid access key", id="bad-key")],
)  # fmt: skip
def test_an_error_without_a_job_state_is_about_the_request(
    reply: Any, error: type[LeanplumError], words: str
) -> None:
    client, transport, sleeps = make((200, reply))
    with pytest.raises(error, match=words) as caught:
        client.job_status("j")
    assert type(caught.value) is error
    assert caught.value.status == 200
    assert (len(transport.sent), sleeps) == (1, [])


# -- the decisions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "attempt", "idempotent", "expected"),
    [(RateLimited("x", 429), 0, False, True), (ServerError("x", 503), 0, False, True),
     (ConnectionFailed("x"), 0, False, True), (AnswerLost("x"), 0, False, False),
     (AnswerLost("x"), 0, True, True), (AuthFailed("x", 401), 0, True, False),
     (RequestRejected("x", 400), 0, True, False), (ServerError("x", 500), RETRIES, True, False),
     (ServerError("x", 500), RETRIES - 1, True, True), (AnswerLost("x"), RETRIES, True, False)],
    ids=["429", "5xx", "never-sent", "lost-multi", "lost-read", "auth", "4xx", "5xx-exhausted",
         "5xx-last-retry", "lost-read-exhausted"],
)  # fmt: skip
def test_should_retry(error: LeanplumError, attempt: int, idempotent: bool, expected: bool) -> None:
    client, _, _ = make()
    assert client._should_retry(error, attempt, idempotent=idempotent) is expected


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [pytest.param(lambda d: d / 2, [1.0, 2.0, 4.0, 8.0, 15.0], id="half"),
     pytest.param(lambda d: 0.0, [0.2, 0.4, 0.8, 1.6, 3.0], id="floor-10-percent"),
     pytest.param(lambda d: d * 9, BACKOFF, id="never-above-the-backoff")],
)  # fmt: skip
def test_backoff_times_go_through_the_injected_jitter(jitter: Any, expected: list[float]) -> None:
    client, _, sleeps = make(*[(503, b"") for _ in range(RETRIES + 1)], jitter=jitter)
    with pytest.raises(ServerError):
        client.start_import("b", "f.csv")
    assert sleeps == pytest.approx(expected)


def test_the_default_jitter_stays_between_the_floor_and_the_backoff() -> None:
    client = LeanplumClient(API, APP, KEY, session=requests.Session())
    for attempt, cap in enumerate(BACKOFF * 4):
        assert 0.1 * cap <= client._sleep_time_seconds(attempt % RETRIES) <= cap


# -- errors: status, excerpt, no key ----------------------------------------------------------
def test_the_excerpt_is_short_and_redacted_even_where_the_cut_falls() -> None:
    body = ("x" * (BODY_EXCERPT_CHARS - 5) + KEY).encode() + b"y" * 500
    client, _, _ = make((400, body))
    with pytest.raises(RequestRejected) as caught:
        client.start_import("b", "f.csv")
    assert caught.value.body_excerpt == ("x" * (BODY_EXCERPT_CHARS - 5) + "***yy")
    no_key_anywhere(caught.value)


def test_each_retry_is_logged_without_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    client, _, _ = make(refused(), (200, JOB))
    client.start_import("b", "f.csv")
    [line] = capsys.readouterr().out.splitlines()
    entry = {k: v for k, v in json.loads(line).items() if k != "time"}
    assert entry == {"severity": "WARNING", "message": "Leanplum multi: retry 1 after 2.0 s",
                     "step": "leanplum_retry", "http_status": 0,
                     "reason": "multi: cannot reach Leanplum (ConnectionError)"}  # fmt: skip
    assert KEY not in line


def test_the_client_is_a_context_manager_that_closes_its_session() -> None:
    client, transport, _ = make((200, JOB))
    with client as entered:
        assert entered is client
        assert entered.start_import("b", "f.csv") == "job-1"
        assert not transport.closed
    assert transport.closed


def test_an_error_without_a_reply_has_status_0_and_no_excerpt() -> None:
    error = LeanplumError("plain")
    assert (error.message, error.status, error.body_excerpt) == ("plain", 0, None)
    assert repr(error) == "LeanplumError(message='plain', status=0, body_excerpt=None)"


@pytest.mark.parametrize(
    "kind", [AuthFailed, RequestRejected, RateLimited, ServerError, ConnectionFailed, AnswerLost]
)
def test_every_error_is_a_leanplum_error_with_status_and_excerpt(kind: type) -> None:
    error = kind("m", 418, "b")
    assert isinstance(error, LeanplumError)
    assert (error.message, error.status, error.body_excerpt) == ("m", 418, "b")


@pytest.mark.parametrize("transient", TRANSIENT)
def test_a_job_start_without_retries_sends_one_request_and_never_sleeps(transient: Any) -> None:
    """The importer's job start: the start queue waits, not a function holding a job slot."""
    client, transport, sleeps = make(transient(), (200, JOB))
    with pytest.raises(LeanplumError):
        client.start_import("bucket", "in/a.csv", retry=False)
    assert (len(transport.sent), sleeps) == (1, [])
