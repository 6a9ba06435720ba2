"""The importer's Leanplum client against the simulator, over real HTTP.

Backoff sleeps are replaced by a recorder (the simulator answers instantly; the policy, not the
clock, is under test). Everything else is real: sockets, the simulator's fault knobs, GCS.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from functions import gcs
from functions.leanplum import (
    AnswerLost,
    AuthFailed,
    ConnectionFailed,
    LeanplumClient,
    RateLimited,
    RequestRejected,
    ServerError,
)
from local_cloud.leanplum_sim import Knobs, LeanplumSimulator, start

APP, DEV, PROD = "app_client_test", "dev_key_client_test", "prod_key_client_test"
BUCKET = "client-test"


@pytest.fixture(scope="module")
def client_bucket(storage_emulator: str) -> str:
    gcs.make_storage_client().create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def sim(client_bucket: str) -> Iterator[LeanplumSimulator]:
    simulator = start(APP, DEV, PROD, knobs=Knobs(pending_seconds=0, running_seconds=0), seed=3)
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def fresh(sim: LeanplumSimulator) -> None:
    sim.admin.reset()


def knobs(sim: LeanplumSimulator, **values: object) -> None:
    sim.admin.configure(**values)


def recorded(sim: LeanplumSimulator, action: str) -> list[dict[str, object]]:
    return sim.admin.requests(action)


def client_for(sim: LeanplumSimulator, key: str = DEV) -> tuple[LeanplumClient, list[float]]:
    sleeps: list[float] = []
    client = LeanplumClient(sim.api_url, APP, key, sleep=sleeps.append, jitter=lambda d: d)
    return client, sleeps


def csv_file(rows: int = 2) -> str:
    name = f"in/{uuid.uuid4().hex}.csv"
    body = "userId,event,time\n" + "".join(f"u{i},open,1764000000\n" for i in range(rows))
    gcs.make_storage_client().bucket(BUCKET).blob(name).upload_from_string(body)
    return name


def test_start_import_sends_the_documented_parameters_once(sim: LeanplumSimulator) -> None:
    client, sleeps = client_for(sim)
    name = csv_file()
    job_id = client.start_import(BUCKET, name)
    [request] = recorded(sim, "multi")
    assert request["key_class"] == "development"
    assert request["method"] == "POST"
    params = request["params"]
    assert isinstance(params, dict)
    assert {k: params[k] for k in ("appId", "createJob", "gcsBucket", "file", "defaultAction",
                                    "apiVersion")} == {
        "appId": APP, "createJob": "true", "gcsBucket": BUCKET, "file": name,
        "defaultAction": "track", "apiVersion": "1.0.6",
    }  # fmt: skip
    assert job_id
    assert sleeps == []


def test_job_status_reads_counts_and_files(sim: LeanplumSimulator) -> None:
    client, _ = client_for(sim)
    job_id = client.start_import(BUCKET, csv_file(rows=3))
    status = client.job_status(job_id)
    while status.running:  # the simulator's job times are zero: this ends at once
        status = client.job_status(job_id)
    assert status.state == "FINISHED"
    assert (status.successes, status.failures) == (3, 0)
    assert status.files
    lines = client.download_results(status.files[0]).decode().splitlines()
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("knob", "error"),
    [pytest.param("error_5xx_rate", ServerError, id="5xx"),
     pytest.param("error_429_rate", RateLimited, id="429")],
)  # fmt: skip
def test_429_and_5xx_are_retried_with_growing_backoff_then_raised(
    sim: LeanplumSimulator, knob: str, error: type[Exception]
) -> None:
    knobs(sim, **{knob: 1.0})
    client, sleeps = client_for(sim)
    with pytest.raises(error):
        client.job_status("any-job")
    assert len(recorded(sim, "getMultiResults")) == LeanplumClient.MAX_RETRIES + 1
    assert sleeps == sorted(sleeps)
    assert sleeps[0] == LeanplumClient.INITIAL_DELAY_SECONDS
    assert max(sleeps) <= LeanplumClient.MAX_DELAY_SECONDS


def test_a_transient_5xx_on_multi_is_retried_and_one_job_starts(sim: LeanplumSimulator) -> None:
    knobs(sim, error_5xx_rate=0.5)
    client, _ = client_for(sim)
    client.start_import(BUCKET, csv_file())
    statuses = [r["status"] for r in recorded(sim, "multi")]
    assert statuses.count(200) == 1
    assert all(s == 503 for s in statuses[:-1])


def test_a_wrong_key_is_not_retried(sim: LeanplumSimulator) -> None:
    client, sleeps = client_for(sim, key="not-the-key")
    with pytest.raises(AuthFailed) as caught:
        client.start_import(BUCKET, csv_file())
    assert len(recorded(sim, "multi")) == 1
    assert sleeps == []
    assert "not-the-key" not in str(caught.value)


def test_other_4xx_are_not_retried(sim: LeanplumSimulator) -> None:
    client, sleeps = client_for(sim)
    with pytest.raises(RequestRejected):
        client.start_import(BUCKET, "in/does-not-exist.csv")
    assert len(recorded(sim, "multi")) == 1
    assert sleeps == []


def test_a_lost_multi_answer_is_never_resent(sim: LeanplumSimulator) -> None:
    knobs(sim, drop_multi_replies=1)
    client, _ = client_for(sim)
    with pytest.raises(AnswerLost):
        client.start_import(BUCKET, csv_file())
    assert len(recorded(sim, "multi")) == 1
    jobs = sim.admin.jobs()
    assert len(jobs) == 1  # the job exists although the answer was lost: hence no resend


def test_a_lost_poll_answer_is_simply_retried(sim: LeanplumSimulator) -> None:
    client, _ = client_for(sim)
    job_id = client.start_import(BUCKET, csv_file())
    knobs(sim, drop_multi_replies=0, error_5xx_rate=0.0)
    assert client.job_status(job_id).state in ("PENDING", "RUNNING", "FINISHED")


def test_an_unreachable_server_is_a_connection_failure_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        sleeps: list[float] = []
        client = LeanplumClient(f"http://127.0.0.1:{port}/api", APP, DEV, sleep=sleeps.append)
        with pytest.raises(ConnectionFailed):
            client.start_import(BUCKET, "x.csv")  # never sent: safe to retry even for multi
    assert len(sleeps) == LeanplumClient.MAX_RETRIES


def test_a_200_carrying_a_warning_or_error_is_a_failure() -> None:
    """Leanplum may answer 200 with a warning: the action was probably skipped.

    The simulator never answers ``multi`` that way, so a one-route server stands in for it.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    replies = iter([
        b'{"response":[{"success":true,"warning":{"message":"Skipped: limits"}}]}',
        b'{"response":[{"success":false,"error":{"message":"Bad file"}}]}',
    ])  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = next(replies)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = LeanplumClient(f"http://127.0.0.1:{server.server_port}/api", APP, DEV)
        with pytest.raises(RequestRejected, match="Skipped: limits"):
            client.start_import(BUCKET, "a.csv")
        with pytest.raises(RequestRejected, match="Bad file"):
            client.start_import(BUCKET, "a.csv")
    finally:
        server.shutdown()
        server.server_close()
