"""Contract tests: the Leanplum simulator behaves as the team's notes (leanplum-api.md) say.

Real processes and real HTTP: fake-gcs-server (in memory) holds the CSV files, the simulator
runs in-process on a free port (and once as ``python -m`` to check the CLI), and every call goes
through ``requests``; admin calls (reset, knobs, recordings) through the one admin client,
``SimulatorAdmin``. Waits are conditions with deadlines, never bare sleeps used as sync.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

from local_cloud.leanplum_sim import (
    Knobs,
    LeanplumSimulator,
    SimulatorAdmin,
    SimulatorAdminError,
    start,
)
from local_cloud.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.emulator

APP, DEV, PROD = "app-123", "dev-secret-key-abc", "prod-secret-key-xyz"
PENDING_S, RUNNING_S = 0.3, 0.4
BUCKET = "sim-contract"
DAY = 86_400


# fixtures -----------------------------------------------------------------------------------
def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    wait_for(check, timeout, what, max_interval_s=0.02)


@pytest.fixture(scope="module")
def gcs_host(storage_emulator: str) -> str:
    return storage_emulator


@pytest.fixture(scope="module")
def bucket(gcs_host: str) -> storage.Bucket:
    client = storage.Client(project="local", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return client.create_bucket(BUCKET)


@pytest.fixture(scope="module")
def sim(gcs_host: str) -> Iterator[LeanplumSimulator]:
    knobs = Knobs(pending_seconds=PENDING_S, running_seconds=RUNNING_S)
    simulator = start(APP, DEV, PROD, knobs=knobs, seed=7)
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "sim" in request.fixturenames:
        sim = request.getfixturevalue("sim")
        sim.admin.reset()


# helpers ------------------------------------------------------------------------------------
def upload(bucket: storage.Bucket, data: bytes | str, name: str | None = None) -> str:
    name = name or f"in/{uuid.uuid4().hex}.csv"
    raw = data.encode() if isinstance(data, str) else data
    bucket.blob(name).upload_from_string(raw, content_type="text/csv")
    return name


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        s = str(v)
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n\r') else s

    return "\r\n".join(",".join(cell(v) for v in line) for line in [header, *rows]) + "\r\n"


def call(
    sim: LeanplumSimulator, method: str = "GET", key: str = DEV, **params: Any
) -> requests.Response:
    """GET: every parameter in the query string. POST: as the importer sends it, a JSON body
    with every parameter and ``?action=<name>`` in the query string."""
    base = {"appId": APP, "clientKey": key, "apiVersion": "1.0.6"}
    if method == "GET":
        return requests.get(sim.api_url, params={**base, **params}, timeout=10)
    query = {"action": params["action"]} if "action" in params else None
    return requests.post(sim.api_url, params=query, json={**base, **params}, timeout=10)


def create_job(sim: LeanplumSimulator, name: str, **extra: Any) -> str:
    params = {"action": "multi", "createJob": "true", "gcsBucket": BUCKET, "file": name}
    params.setdefault("defaultAction", "track")
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    resp = call(sim, "POST", **params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["response"][0]["success"] is True
    job_id: str = body["response"][0]["jobId"]
    return job_id


def poll(sim: LeanplumSimulator, job_id: str) -> dict[str, Any]:
    resp = call(sim, action="getMultiResults", jobId=job_id)
    assert resp.status_code == 200, resp.text
    item: dict[str, Any] = resp.json()["response"][0]
    return item


def wait_done(sim: LeanplumSimulator, job_id: str, timeout: float = 5) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(poll(sim, job_id))
        return seen["state"] in ("FINISHED", "FAILED")

    _wait_until(done, timeout, f"job {job_id} to end")
    return seen


def results_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for url in item["data"]["files"]:
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200
        lines.extend(json.loads(line) for line in resp.text.splitlines())
    return lines


def run_csv(sim: LeanplumSimulator, bucket: storage.Bucket, text: str) -> list[dict[str, Any]]:
    item = wait_done(sim, create_job(sim, upload(bucket, text)))
    assert item["state"] == "FINISHED", item
    return results_of(item)


# keys ---------------------------------------------------------------------------------------
INVALID_KEY = {"response": [{"success": False, "error": {"message": "Invalid access key"}}]}


@pytest.mark.parametrize(
    ("app", "key"),
    [
        pytest.param("wrong-app", DEV, id="wrong-app-id"),
        pytest.param(APP, "not-a-key", id="unknown-key"),
        pytest.param(APP, "", id="empty-key"),
    ],
)
def test_bad_app_or_key_is_403_invalid_access_key(
    sim: LeanplumSimulator, app: str, key: str
) -> None:
    params = {"appId": app, "clientKey": key, "apiVersion": "1.0.6", "action": "getMultiResults"}
    resp = requests.get(sim.api_url, params={**params, "jobId": "x"}, timeout=5)
    assert resp.status_code == 403
    assert resp.json() == INVALID_KEY


@pytest.mark.parametrize(
    ("key", "params"),
    [
        pytest.param(
            PROD, {"action": "multi", "createJob": "true", "file": "x"}, id="job-prod-key"
        ),
        pytest.param(PROD, {"action": "getMultiResults", "jobId": "x"}, id="poll-with-prod-key"),
        pytest.param(DEV, {"action": "track", "userId": "u", "event": "e"}, id="track-dev-key"),
        pytest.param(DEV, {"action": "setUserAttributes", "userId": "u"}, id="attrs-dev-key"),
        pytest.param(DEV, {"action": "multi", "data": "[]"}, id="inline-multi-dev-key"),
    ],
)
def test_wrong_key_class_is_403(sim: LeanplumSimulator, key: str, params: dict[str, str]) -> None:
    resp = call(sim, "POST", key=key, **params)
    assert resp.status_code == 403
    item = resp.json()["response"][0]
    assert item["success"] is False
    assert item["error"]["message"].startswith("Invalid access key")


def test_missing_action_or_version_and_unknown_action_are_400(sim: LeanplumSimulator) -> None:
    assert call(sim, action="nope").status_code == 400
    resp = requests.get(sim.api_url, params={"appId": APP, "clientKey": DEV, "action": "x"})
    assert resp.status_code == 400
    assert "apiVersion" in resp.json()["response"][0]["error"]["message"]


# the CSV job: encodings, lifecycle, results --------------------------------------------------
NOW_CSV = "userId,event,time\r\nu1,Purchase,{t}\r\n"


def _multipart(sim: LeanplumSimulator, fields: dict[str, str]) -> requests.Response:
    files = {k: (None, v) for k, v in fields.items()}
    return requests.post(sim.api_url, files=files, timeout=10)


def _json_body(sim: LeanplumSimulator, fields: dict[str, str]) -> requests.Response:
    return requests.post(sim.api_url, json=fields, timeout=10)


def _chunked_json(sim: LeanplumSimulator, fields: dict[str, str]) -> requests.Response:
    """A JSON body sent with Transfer-Encoding: chunked (a generator body), no Content-Length."""
    chunks = iter([json.dumps(fields).encode()])
    headers = {"Content-Type": "application/json"}
    return requests.post(sim.api_url, data=chunks, headers=headers, timeout=10)


def _query(sim: LeanplumSimulator, fields: dict[str, str]) -> requests.Response:
    return requests.post(sim.api_url, params=fields, timeout=10)


def _curl_style(sim: LeanplumSimulator, fields: dict[str, str]) -> requests.Response:
    """The help article's curl: --form fields but a forced Content-Type: application/json."""
    prepared = requests.Request(
        "POST", sim.api_url, files={k: (None, v) for k, v in fields.items()}
    )
    req = prepared.prepare()
    req.headers["Content-Type"] = "application/json"
    with requests.Session() as s:
        return s.send(req, timeout=10)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(_multipart, id="multipart"),
        pytest.param(_json_body, id="json"),
        pytest.param(_chunked_json, id="json-chunked"),
        pytest.param(_query, id="query-string"),
        pytest.param(_curl_style, id="curl-form-with-json-header"),
    ],
)
def test_create_job_accepts_every_documented_encoding(
    sim: LeanplumSimulator, bucket: storage.Bucket, send: Callable[..., requests.Response]
) -> None:
    name = upload(bucket, NOW_CSV.format(t=int(time.time())))
    fields = {
        "appId": APP,
        "clientKey": DEV,
        "apiVersion": "1.0.6",
        "action": "multi",
        "createJob": "true",
        "gcsBucket": BUCKET,
        "file": name,
        "defaultAction": "track",
    }
    resp = send(sim, fields)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == ["response"]
    assert body["response"][0]["success"] is True
    assert body["response"][0]["jobId"]


def test_job_moves_pending_running_finished_on_time(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(
        pending_seconds=1.0, running_seconds=0.5
    )  # roomy: the first poll is PENDING
    name = upload(bucket, NOW_CSV.format(t=int(time.time())))
    started = time.monotonic()
    job_id = create_job(sim, name)
    first = poll(sim, job_id)
    assert first["state"] == "PENDING"
    assert "data" not in first
    states = [first["state"]]

    def finished() -> bool:
        state: str = poll(sim, job_id)["state"]
        if state != states[-1]:
            states.append(state)
        return state == "FINISHED"

    _wait_until(finished, 5, "FINISHED")
    assert states == ["PENDING", "RUNNING", "FINISHED"]
    assert time.monotonic() - started >= 1.5


def test_finished_job_reports_counts_and_files_in_both_places(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    now = int(time.time())
    text = csv_text(
        ["userId", "event", "time", "value", "currencyCode", "params.sku"],
        [
            ["u1", "Purchase", now - 60, "9.99", "EUR", "A1"],
            ["", "Purchase", now - 60, "", "", ""],
            ["u2", "Open", now - 30, "", "", ""],
        ],
    )
    job_id = create_job(sim, upload(bucket, text))
    item = wait_done(sim, job_id)
    assert item["success"] is True
    assert item["state"] == "FINISHED"
    assert item["data"]["successesCount"] == 2
    assert item["data"]["failuresCount"] == 1
    assert item["files"] == item["data"]["files"]
    assert all(u.startswith(f"{sim.base_url}/_sim/results/{job_id}/") for u in item["files"])
    assert results_of(item) == [
        {"success": True},
        {"success": False, "error": {"message": "Missing argument userId"}},
        {"success": True},
    ]
    events = sim.admin.events(f"job:{job_id}")
    assert [(e["userId"], e["event"], e.get("params")) for e in events] == [
        ("u1", "Purchase", {"sku": "A1"}),
        ("u2", "Open", None),
    ]
    assert events[0]["value"] == 9.99
    assert events[0]["currencyCode"] == "EUR"


def test_results_are_split_across_files_in_order(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(results_lines_per_file=3)
    now = int(time.time())
    rows = [[f"u{i}", "Tap" if i % 2 else "1", now] for i in range(8)]  # even rows: bad name
    item = wait_done(
        sim, create_job(sim, upload(bucket, csv_text(["userId", "event", "time"], rows)))
    )
    assert len(item["data"]["files"]) == 3
    assert [r["success"] for r in results_of(item)] == [i % 2 == 1 for i in range(8)]


def test_job_records_bucket_file_and_generation(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    name = upload(bucket, NOW_CSV.format(t=int(time.time())))
    generation = bucket.get_blob(name).generation
    job_id = create_job(sim, name)
    wait_done(sim, job_id)
    (job,) = sim.admin.jobs()
    assert job["jobId"] == job_id
    assert (job["bucket"], job["file"], job["generation"]) == (BUCKET, name, int(generation))
    assert (job["state"], job["successesCount"], job["failuresCount"]) == ("FINISHED", 1, 0)


#: Rows of the large-file test; ``LEANPLUM_SIM_BIG_ROWS=2000000`` measures a bigger one.
BIG_ROWS = int(os.environ.get("LEANPLUM_SIM_BIG_ROWS", "1000000"))


def test_multi_on_a_large_file_answers_at_once_and_the_job_checks_the_rows(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    """A job-based API answers ``multi`` without reading the rows: the client's read timeout
    (60 s) must not depend on the file's size. Every 1000th row lacks its userId."""
    now = int(time.time())
    body = "".join(
        f"{'' if i % 1000 == 999 else f'u{i % 50_000}'},E{i % 3},{now - i % 3600}\n"
        for i in range(BIG_ROWS)
    )
    name = upload(bucket, "userId,event,time\n" + body)
    del body
    started = time.monotonic()
    job_id = create_job(sim, name)
    answered = time.monotonic() - started
    job = sim.admin.job(job_id)
    assert job is not None
    assert job["done"] is False  # the rows are checked later, by the job
    item: dict[str, Any] = {}

    def ended() -> bool:
        item.update(poll(sim, job_id))
        return item["state"] in ("FINISHED", "FAILED")

    wait_for(ended, 600, f"job {job_id} on {BIG_ROWS} rows", max_interval_s=0.5)
    finished = time.monotonic() - started
    print(
        f"\n{BIG_ROWS} rows: multi answered in {answered:.2f} s, job FINISHED in {finished:.1f} s"
    )
    assert answered < 2.0
    assert item["state"] == "FINISHED", item
    bad = BIG_ROWS // 1000
    assert (item["data"]["successesCount"], item["data"]["failuresCount"]) == (BIG_ROWS - bad, bad)
    assert len(item["data"]["files"]) == -(-BIG_ROWS // 10_000)
    sim.admin.reset()  # let go of the job's million results


def test_a_file_gone_before_the_job_runs_fails_the_job(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(pending_seconds=1.0)
    name = upload(bucket, NOW_CSV.format(t=T))
    job_id = create_job(sim, name)
    bucket.blob(name).delete()
    item = wait_done(sim, job_id, timeout=10)
    assert item["state"] == "FAILED"
    assert "deleted or replaced" in item["error"]["message"]
    assert sim.admin.events(f"job:{job_id}") == []


# the documented row rules, one job for the whole table ---------------------------------------
T = int(time.time())
OK: dict[str, Any] = {"success": True}
RULES: list[tuple[str, dict[str, Any], str | None]] = [
    # (id, row, None for plain success | "warning:<text>" | "error:<substring>")
    ("valid", {"userId": "u", "event": "Purchase", "time": T - 60}, None),
    ("float-time", {"userId": "u", "event": "Purchase", "time": f"{T - 60}.5"}, None),
    ("untrimmed-user", {"userId": "  u  ", "event": "Open", "time": T}, None),
    ("user-400", {"userId": "x" * 400, "event": "Open", "time": T}, None),
    ("user-401", {"userId": "x" * 401, "event": "Open", "time": T}, "error:userId"),
    ("no-user", {"event": "Open", "time": T}, "error:Missing argument userId"),
    (
        "device-401",
        {"userId": "u", "event": "E", "time": T, "deviceId": "d" * 401},
        "error:deviceId",
    ),
    ("no-event", {"userId": "u", "time": T}, "error:Missing argument event"),
    ("event-139", {"userId": "u", "event": "e" * 139, "time": T}, None),
    ("event-140", {"userId": "u", "event": "e" * 140, "time": T}, "error:1 to 139"),
    ("event-dot", {"userId": "u", "event": ".open", "time": T}, "error:must not start"),
    ("event-dash", {"userId": "u", "event": "-open", "time": T}, "error:must not start"),
    ("event-slash", {"userId": "u", "event": "open/", "time": T}, "error:must not end"),
    ("event-inner-ok", {"userId": "u", "event": "a.b-c/d e", "time": T}, None),
    ("event-comma", {"userId": "u", "event": "a,b", "time": T}, "error:must not contain"),
    ("event-pipe", {"userId": "u", "event": "a|b", "time": T}, "error:must not contain"),
    ("event-quote", {"userId": "u", "event": 'a"b', "time": T}, "error:must not contain"),
    ("event-brace", {"userId": "u", "event": "a{b", "time": T}, "error:must not contain"),
    ("event-tab", {"userId": "u", "event": "a\tb", "time": T}, "error:must not contain"),
    ("event-cr", {"userId": "u", "event": "a\rb", "time": T}, "error:must not contain"),
    ("event-lf", {"userId": "u", "event": "a\nb", "time": T}, "error:must not contain"),
    ("event-numeric", {"userId": "u", "event": "123", "time": T}, "error:purely numeric"),
    ("event-decimal", {"userId": "u", "event": "12.5", "time": T}, "error:purely numeric"),
    ("event-alnum-ok", {"userId": "u", "event": "123a", "time": T}, None),
    ("param-ok", {"userId": "u", "event": "E", "time": T, "params.color": "red"}, None),
    ("param-dot", {"userId": "u", "event": "E", "time": T, "params..x": "1"}, "error:parameter"),
    ("param-pipe", {"userId": "u", "event": "E", "time": T, "params.a|b": "1"}, "error:parameter"),
    ("param-numeric", {"userId": "u", "event": "E", "time": T, "params.42": "1"}, "error:numeric"),
    ("no-time", {"userId": "u", "event": "E"}, "error:Missing argument time"),
    ("time-ms", {"userId": "u", "event": "E", "time": T * 1000}, "error:milliseconds"),
    ("time-text", {"userId": "u", "event": "E", "time": "yesterday"}, "error:time"),
    ("time-future", {"userId": "u", "event": "E", "time": T + 3 * DAY}, "error:future"),
    ("time-364d", {"userId": "u", "event": "E", "time": T - 364 * DAY}, None),
    (
        "time-400d",
        {"userId": "u", "event": "E", "time": T - 400 * DAY - 3600},
        "warning:Past event detected (400 days ago). Rewriting timestamp.",
    ),
    ("value-ok", {"userId": "u", "event": "E", "time": T, "value": "-3.5"}, None),
    ("value-text", {"userId": "u", "event": "E", "time": T, "value": "ten"}, "error:value"),
    ("value-nan", {"userId": "u", "event": "E", "time": T, "value": "nan"}, "error:value"),
    ("currency-ok", {"userId": "u", "event": "E", "time": T, "currencyCode": "JPY"}, None),
    (
        "currency-lower",
        {"userId": "u", "event": "E", "time": T, "currencyCode": "usd"},
        "error:4217",
    ),
    (
        "currency-fake",
        {"userId": "u", "event": "E", "time": T, "currencyCode": "ABC"},
        "error:4217",
    ),
    ("info-device", {"userId": "u", "event": "E", "time": T, "info": "x", "deviceId": "d1"}, None),
    ("unsupported", {"userId": "u", "event": "E", "time": T, "action": "advance"}, "error:advance"),
    (
        "attrs-action",
        {"userId": "u", "action": "setUserAttributes", "userAttributes.tier": "g"},
        None,
    ),
]
RULE_COLUMNS = sorted({c for _, row, _ in RULES for c in row})


@pytest.fixture(scope="module")
def rule_results(gcs_host: str, bucket: storage.Bucket, sim: LeanplumSimulator) -> Any:
    sim.admin.reset()
    rows = [[row.get(c, "") for c in RULE_COLUMNS] for _, row, _ in RULES]
    job_id = create_job(sim, upload(bucket, csv_text(RULE_COLUMNS, rows)))
    item = wait_done(sim, job_id)
    events = sim.admin.events(f"job:{job_id}")
    return item, results_of(item), {e["row"]: e for e in events}


@pytest.mark.parametrize(
    ("index", "expect"),
    [pytest.param(i, expect, id=rid) for i, (rid, _, expect) in enumerate(RULES)],
)
def test_row_rule(rule_results: Any, index: int, expect: str | None) -> None:
    _, results, _ = rule_results
    assert len(results) == len(RULES)
    got = results[index]
    if expect is None:
        assert got == OK
    elif expect.startswith("warning:"):
        assert got == {"success": True, "warning": {"message": expect[len("warning:") :]}}
    else:
        assert got["success"] is False
        assert expect[len("error:") :] in got["error"]["message"]


def test_rule_side_effects_are_recorded(rule_results: Any) -> None:
    item, results, events = rule_results
    ids = [rid for rid, _, _ in RULES]
    # rows are 1-based in the records
    untrimmed = events[ids.index("untrimmed-user") + 1]
    assert untrimmed["userId"] == "  u  "
    past = events[ids.index("time-400d") + 1]
    assert past["originalTime"] == T - 400 * DAY - 3600
    assert past["time"] > T - 60
    assert events[ids.index("param-ok") + 1]["params"] == {"color": "red"}
    assert events[ids.index("attrs-action") + 1]["userAttributes"] == {"tier": "g"}
    assert ids.index("user-401") + 1 not in events
    assert item["data"]["successesCount"] == sum(r["success"] for r in results)
    assert item["data"]["failuresCount"] == sum(not r["success"] for r in results)


def test_params_over_50_per_event_is_an_error(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    header = ["userId", "event", "time"] + [f"params.p{i}" for i in range(51)]
    full = ["u", "E", T] + ["v"] * 51
    fifty = ["u", "E", T] + ["v"] * 50 + [""]
    results = run_csv(sim, bucket, csv_text(header, [fifty, full]))
    assert results[0] == OK
    assert results[1]["success"] is False
    assert "at most 50" in results[1]["error"]["message"]


def test_without_default_action_rows_need_an_action_column(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    text = csv_text(
        ["userId", "event", "time", "action"], [["u", "E", T, "track"], ["u", "E", T, ""]]
    )
    item = wait_done(sim, create_job(sim, upload(bucket, text), defaultAction=None))
    results = results_of(item)
    assert results[0] == OK
    assert results[1] == {"success": False, "error": {"message": "Missing argument action"}}


def test_row_with_too_many_cells_is_an_error(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    results = run_csv(sim, bucket, f"userId,event,time\nu,E,{T}\nu,E,{T},extra\n\nu,F,{T}\n")
    assert [r["success"] for r in results] == [True, False, True]


# file-level problems -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"\xef\xbb\xbf" + NOW_CSV.format(t=T).encode(), "BOM", id="bom"),
        pytest.param(b"userId,event,time\nu\xff,E,1\n", "not valid UTF-8", id="bad-utf8"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"userId,event,event\nu,E,E\n", "twice", id="duplicate-column"),
    ],
)
def test_unreadable_file_fails_the_job(
    sim: LeanplumSimulator, bucket: storage.Bucket, data: bytes, reason: str
) -> None:
    item = wait_done(sim, create_job(sim, upload(bucket, data)))
    assert item["state"] == "FAILED"
    assert reason in item["error"]["message"]
    assert item["data"]["files"] == []


@pytest.mark.parametrize(
    ("bucket_name", "file_name"),
    [
        pytest.param(BUCKET, "no/such.csv", id="object"),
        pytest.param("nobucket", "a.csv", id="bucket"),
    ],
)
def test_missing_object_or_bucket_is_an_error_reply(
    sim: LeanplumSimulator, bucket: storage.Bucket, bucket_name: str, file_name: str
) -> None:
    resp = call(
        sim, "POST", action="multi", createJob="true", gcsBucket=bucket_name, file=file_name
    )
    assert resp.status_code == 404
    assert resp.json()["response"][0]["success"] is False
    assert "not found" in resp.json()["response"][0]["error"]["message"]
    assert sim.admin.jobs() == []


def test_file_over_the_size_limit_is_refused(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(max_file_bytes=20)
    name = upload(bucket, NOW_CSV.format(t=T))
    resp = call(sim, "POST", action="multi", createJob="true", gcsBucket=BUCKET, file=name)
    assert resp.status_code == 400
    assert "at most 20 bytes" in resp.json()["response"][0]["error"]["message"]


def test_create_job_requires_create_job_true_and_a_bucket(sim: LeanplumSimulator) -> None:
    resp = call(sim, "POST", action="multi", createJob="false", gcsBucket=BUCKET, file="x")
    assert resp.status_code == 400
    resp = call(sim, "POST", action="multi", createJob="true", file="x")
    assert resp.status_code == 400
    assert resp.json()["response"][0]["error"]["message"] == "Missing argument gcsBucket"


def test_unknown_or_missing_job_id_is_an_error(sim: LeanplumSimulator) -> None:
    resp = call(sim, action="getMultiResults", jobId="nope")
    assert resp.status_code == 400
    assert resp.json()["response"][0]["success"] is False
    assert call(sim, action="getMultiResults").status_code == 400


# inline multi, track, setUserAttributes, app limits ------------------------------------------
def test_inline_multi_and_track_are_applied_and_recorded(sim: LeanplumSimulator) -> None:
    data = [
        {"action": "track", "userId": "a", "event": "Open", "time": T, "params": {"k": "v"}},
        {"action": "track", "userId": "b", "event": "1"},
        {"action": "setUserAttributes", "userId": "a", "userAttributes": {"tier": "gold"}},
    ]
    resp = requests.post(
        sim.api_url,
        json={
            "appId": APP,
            "clientKey": PROD,
            "apiVersion": "1.0.6",
            "action": "multi",
            "data": data,
        },
        timeout=5,
    )
    assert resp.status_code == 200
    got = resp.json()["response"]
    assert got[0] == OK
    assert got[1]["success"] is False
    assert got[2] == OK
    resp = call(sim, "POST", key=PROD, action="track", userId="c", event="Buy", value="2")
    assert (resp.status_code, resp.json()) == (200, {"response": [OK]})
    resp = call(sim, "POST", key=PROD, action="track", userId="c", event="-bad")
    assert resp.status_code == 400
    assert resp.json()["response"][0]["success"] is False
    events = sim.admin.events()
    assert [(e["source"], e["action"], e["userId"]) for e in events] == [
        ("multi", "track", "a"),
        ("multi", "setUserAttributes", "a"),
        ("track", "track", "c"),
    ]
    assert events[0]["params"] == {"k": "v"}


@pytest.mark.parametrize(
    ("users", "actions"),
    [pytest.param(51, 51, id="51-users"), pytest.param(1, 501, id="501-actions")],
)
def test_inline_multi_over_limits_is_403(sim: LeanplumSimulator, users: int, actions: int) -> None:
    data = [
        {"action": "track", "userId": f"u{i % users}", "event": "E", "time": T}
        for i in range(actions)
    ]
    resp = call(sim, "POST", key=PROD, action="multi", data=json.dumps(data))
    assert resp.status_code == 403
    assert "limits" in resp.json()["response"][0]["error"]["message"]
    assert sim.admin.events() == []


def test_app_wide_name_limits(sim: LeanplumSimulator) -> None:
    data = [{"action": "track", "userId": "u", "event": f"ev{i}"} for i in range(500)]
    resp = call(sim, "POST", key=PROD, action="multi", data=json.dumps(data))
    assert all(r == OK for r in resp.json()["response"])
    resp = call(sim, "POST", key=PROD, action="track", userId="u", event="ev500")
    assert "event names" in resp.json()["response"][0]["error"]["message"]
    assert call(sim, "POST", key=PROD, action="track", userId="u", event="ev1").status_code == 200
    for batch in range(5):
        params = json.dumps({f"p{batch}_{i}": 1 for i in range(50)})
        resp = call(sim, "POST", key=PROD, action="track", userId="u", event="ev2", params=params)
        assert (resp.status_code == 200) is (batch < 4)


# recorded requests ---------------------------------------------------------------------------
def test_requests_are_recorded_in_order_without_keys(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    job_id = create_job(sim, upload(bucket, NOW_CSV.format(t=T)))
    poll(sim, job_id)
    call(sim, "POST", key=PROD, action="track", userId="u", event="E")
    call(sim, key="bogus", action="getMultiResults", jobId=job_id)
    recorded = sim.admin.requests()
    assert [(r["method"], r["action"], r["key_class"], r["status"]) for r in recorded] == [
        ("POST", "multi", "development", 200),
        ("GET", "getMultiResults", "development", 200),
        ("POST", "track", "production", 200),
        ("GET", "getMultiResults", "invalid", 403),
    ]
    assert all("clientKey" not in r["params"] for r in recorded)
    assert recorded[0]["params"]["file"]
    assert [r["seq"] for r in recorded] == [1, 2, 3, 4]
    text = json.dumps(recorded) + json.dumps(sim.admin.jobs())
    assert DEV not in text
    assert PROD not in text
    assert "bogus" not in text


# fault knobs ---------------------------------------------------------------------------------
def test_5xx_share_answers_503_and_does_nothing(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(error_5xx_rate=1.0)
    name = upload(bucket, NOW_CSV.format(t=T))
    resp = call(sim, "POST", action="multi", createJob="true", gcsBucket=BUCKET, file=name)
    assert resp.status_code == 503
    assert resp.json()["response"][0]["success"] is False
    assert sim.admin.jobs() == []
    assert sim.admin.requests()[-1]["status"] == 503


def test_429_share_has_no_retry_after(sim: LeanplumSimulator) -> None:
    sim.admin.configure(error_429_rate=1.0)
    resp = call(sim, "POST", key=PROD, action="track", userId="u", event="E")
    assert resp.status_code == 429
    assert "Retry-After" not in resp.headers
    assert sim.admin.events() == []


def test_fault_shares_are_seeded_and_reproducible(sim: LeanplumSimulator) -> None:
    def pattern() -> list[int]:
        sim.admin.configure(error_5xx_rate=0.5)
        return [call(sim, action="getMultiResults", jobId="x").status_code for _ in range(20)]

    first = pattern()
    sim.admin.reset()
    assert pattern() == first
    assert set(first) == {400, 503}


def test_added_latency(sim: LeanplumSimulator) -> None:
    sim.admin.configure(latency_ms=250)
    started = time.monotonic()
    call(sim, action="getMultiResults", jobId="x")
    assert time.monotonic() - started >= 0.25


def test_fail_jobs_count_then_normal(sim: LeanplumSimulator, bucket: storage.Bucket) -> None:
    sim.admin.configure(fail_jobs=1)
    name = upload(bucket, NOW_CSV.format(t=T))
    failed = wait_done(sim, create_job(sim, name))
    assert failed["state"] == "FAILED"
    assert failed["error"]["message"] == "Job failed (simulated)"
    assert wait_done(sim, create_job(sim, name))["state"] == "FINISHED"


def test_fail_job_rate(sim: LeanplumSimulator, bucket: storage.Bucket) -> None:
    sim.admin.configure(fail_job_rate=1.0)
    assert wait_done(sim, create_job(sim, upload(bucket, NOW_CSV.format(t=T))))["state"] == "FAILED"


@pytest.mark.parametrize("knob", [{"hang_jobs": 1}, {"hang_job_rate": 1.0}], ids=["count", "rate"])
def test_hanging_job_stays_running(
    sim: LeanplumSimulator, bucket: storage.Bucket, knob: dict[str, Any]
) -> None:
    name = upload(bucket, NOW_CSV.format(t=T))
    sim.admin.configure(**knob)
    hung = create_job(sim, name)
    sim.admin.configure(hang_jobs=0, hang_job_rate=0.0)
    later = create_job(sim, name)
    assert wait_done(sim, later)["state"] == "FINISHED"  # a job started after it is done...
    assert poll(sim, hung)["state"] == "RUNNING"  # ...and this one is still running


def test_warn_events_are_skipped_with_a_warning(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(warn_events=["Skip"])
    text = csv_text(["userId", "event", "time"], [["u", "Skip", T], ["u", "Keep", T]])
    assert run_csv(sim, bucket, text) == [
        {"success": True, "warning": {"message": "Event skipped (simulated)"}},
        OK,
    ]
    resp = call(sim, "POST", key=PROD, action="track", userId="u", event="Skip")
    assert resp.json()["response"][0]["warning"]["message"] == "Event skipped (simulated)"
    assert [e["event"] for e in sim.admin.events()] == ["Keep"]


def test_results_file_5xx_share(sim: LeanplumSimulator, bucket: storage.Bucket) -> None:
    item = wait_done(sim, create_job(sim, upload(bucket, NOW_CSV.format(t=T))))
    sim.admin.configure(results_5xx_rate=1.0)
    assert requests.get(item["files"][0], timeout=5).status_code == 503
    sim.admin.configure(results_5xx_rate=0.0)
    assert requests.get(item["files"][0], timeout=5).status_code == 200


def test_lost_reply_creates_the_job_but_closes_the_connection(
    sim: LeanplumSimulator, bucket: storage.Bucket
) -> None:
    sim.admin.configure(drop_multi_replies=1)
    name = upload(bucket, NOW_CSV.format(t=T))
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", action="multi", createJob="true", gcsBucket=BUCKET, file=name)
    (job,) = sim.admin.jobs()
    assert job["file"] == name
    assert sim.admin.requests()[-1]["fault"] == "dropped"
    create_job(sim, name)  # the next one answers
    assert len(sim.admin.jobs()) == 2


def test_config_patch_is_validated_and_reset_restores(sim: LeanplumSimulator) -> None:
    for bad in ({"no_such_knob": 1}, {"error_5xx_rate": 2}, {"warn_events": "x"}):
        with pytest.raises(SimulatorAdminError) as refused:
            sim.admin.configure(**bad)
        assert refused.value.status == 400
    assert sim.admin.config()["latency_ms"] == 0
    assert sim.admin.configure(latency_ms=5)["latency_ms"] == 5
    sim.admin.reset()
    assert sim.admin.config()["latency_ms"] == 0


# the command line ----------------------------------------------------------------------------
def test_cli_prints_ready_serves_and_stops_on_sigterm(
    gcs_host: str, bucket: storage.Bucket
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_EMULATOR_HOST": gcs_host}
    cmd = [sys.executable, "-m", "local_cloud.leanplum_sim", "--port", "0"]
    cmd += ["--app-id", APP, "--dev-key", DEV, "--prod-key", PROD, "--seed", "3"]
    cmd += ["--pending-seconds", "0", "--running-seconds", "0", "--warn-event", "Skip"]
    cmd += ["--fail-jobs", "1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        api_url = line.split(" ", 1)[1]
        assert api_url.endswith("/api")
        config = SimulatorAdmin(api_url).config()
        assert (config["warn_events"], config["fail_jobs"]) == (["Skip"], 1)
        name = upload(bucket, NOW_CSV.format(t=int(time.time())))
        fields = {"appId": APP, "clientKey": DEV, "apiVersion": "1.0.6", "action": "multi"}
        fields |= {"createJob": "true", "gcsBucket": BUCKET, "file": name, "defaultAction": "track"}
        job = requests.post(api_url, json=fields, timeout=5).json()["response"][0]["jobId"]
        poll_params = {**fields, "action": "getMultiResults", "jobId": job}
        state = requests.get(api_url, params=poll_params, timeout=5).json()["response"][0]["state"]
        assert state == "FAILED"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "STOPPED" in out
        assert "/api 200" in err  # one log line per request...
        assert DEV not in err  # ...that never shows a key
        assert PROD not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
