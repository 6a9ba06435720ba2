"""Contract tests: the simulator stays a STRICT stand-in for Leanplum (leanplum-api.md).

Request bodies only as documented (JSON or multipart, anything else 400), several apps with
their own keys, buckets Leanplum cannot read, and exact job-concurrency counters. Real HTTP
against a simulator started in-process (and once as ``python -m``), fake-gcs-server holding the
files; waits are conditions with deadlines, never sleeps used as synchronisation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from local_cloud.leanplum_sim._jobs import Fate, Job
from local_cloud.leanplum_sim._stats import JobStats
from local_cloud.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.emulator

APP, DEV, PROD = "app-main", "dev-main-secret-111", "prod-main-secret-222"
APP_B, DEV_B = "app-b", "dev-b-secret-333"
APP_C, DEV_C = "app-c", "dev-c-secret-444"
SECRETS = (DEV, PROD, DEV_B, DEV_C)
BUCKET, OTHER_BUCKET = "sim-strict", "sim-strict-other"
PENDING_S, RUNNING_S = 0.2, 0.2
INVALID_KEY = {"response": [{"success": False, "error": {"message": "Invalid access key"}}]}
CSV = "userId,event,time\r\n{user},Opened,{t}\r\n"
Buckets = dict[str, storage.Bucket]
Sim = LeanplumSimulator


# fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def buckets(storage_emulator: str) -> Buckets:
    client = storage.Client(project="local", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return {name: client.create_bucket(name) for name in (BUCKET, OTHER_BUCKET)}


@pytest.fixture(scope="module")
def sim(storage_emulator: str) -> Iterator[LeanplumSimulator]:
    knobs = Knobs(pending_seconds=PENDING_S, running_seconds=RUNNING_S)
    simulator = start(APP, DEV, PROD, knobs=knobs, seed=11, extra_apps={APP_B: DEV_B, APP_C: DEV_C})
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _fresh(sim: Sim) -> None:
    sim.admin.reset()


# helpers ------------------------------------------------------------------------------------
def upload(buckets: Buckets, bucket: str = BUCKET, user: str = "u1", name: str = "") -> str:
    name = name or f"in/{uuid.uuid4().hex}.csv"
    text = CSV.format(user=user, t=int(time.time()))
    buckets[bucket].blob(name).upload_from_string(text, content_type="text/csv")
    return name


def common(app: str = APP, key: str = DEV, action: str = "multi") -> dict[str, Any]:
    return {"appId": app, "clientKey": key, "apiVersion": "1.0.6", "action": action}


def job_fields(name: str, bucket: str = BUCKET, app: str = APP, key: str = DEV) -> dict[str, Any]:
    job = {"createJob": True, "gcsBucket": bucket, "file": name, "defaultAction": "track"}
    return common(app, key) | job


def post_json(sim: Sim, fields: dict[str, Any]) -> requests.Response:
    """As the importer sends it: ``?action=<name>`` and every parameter in a JSON body."""
    return requests.post(sim.api_url, params={"action": fields["action"]}, json=fields, timeout=10)


def create_job(sim: Sim, fields: dict[str, Any]) -> str:
    resp = post_json(sim, fields)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["response"][0]["jobId"])


def poll(sim: Sim, job_id: str, app: str = APP, key: str = DEV) -> requests.Response:
    params = common(app, key, "getMultiResults") | {"jobId": job_id}
    return requests.get(sim.api_url, params=params, timeout=10)


def wait_state(sim: Sim, job_id: str, app: str = APP, key: str = DEV) -> str:
    seen: list[str] = []

    def ended() -> bool:
        seen.append(poll(sim, job_id, app, key).json()["response"][0]["state"])
        return seen[-1] in ("FINISHED", "FAILED")

    wait_for(ended, 10, f"job {job_id} to end", max_interval_s=0.02)
    return seen[-1]


def error_message(resp: requests.Response) -> str:
    (item,) = resp.json()["response"]
    assert item["success"] is False
    return str(item["error"]["message"])


# request bodies -----------------------------------------------------------------------------
def test_json_body_and_query_action_are_recorded(sim: Sim, buckets: Buckets) -> None:
    name = upload(buckets)
    job_id = create_job(sim, job_fields(name))  # createJob is the JSON boolean true
    assert wait_state(sim, job_id) == "FINISHED"
    entry = sim.admin.requests()[0]
    assert entry["content_type"] == "application/json"
    assert entry["query_keys"] == ["action"]
    assert entry["body_keys"] == sorted(job_fields(name))
    assert entry["params"]["createJob"] is True
    assert "clientKey" not in entry["params"]


@pytest.mark.parametrize("encoding", ["json", "files"])
def test_body_wins_over_the_query_string(sim: Sim, buckets: Buckets, encoding: str) -> None:
    name = upload(buckets)
    query = {"action": "multi", "gcsBucket": OTHER_BUCKET, "file": "wrong.csv", "appId": "nope"}
    fields = {k: str(v).lower() if v is True else v for k, v in job_fields(name).items()}
    body: dict[str, Any] = {encoding: fields}  # files=: multipart, one plain field each
    if encoding == "files":
        body["files"] = {k: (None, v) for k, v in fields.items()}
    resp = requests.post(sim.api_url, params=query, timeout=10, **body)
    assert resp.status_code == 200, resp.text
    (job,) = sim.admin.jobs()
    assert (job["app_id"], job["bucket"], job["file"]) == (APP, BUCKET, name)


FILE_PART = b'--b\r\nContent-Disposition: form-data; name="x"; filename="x.csv"\r\n\r\n1\r\n--b--'
UNSUPPORTED, NOT_OBJECT, NOT_JSON = "Unsupported content type", "an object", "not valid JSON"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        pytest.param(FORM, b"appId=x&action=multi", UNSUPPORTED, id="form"),
        pytest.param(FORM, b"", UNSUPPORTED, id="form-empty"),
        pytest.param(None, b'{"action": "multi"}', UNSUPPORTED, id="no-content-type"),
        pytest.param("text/plain", b'{"action": "multi"}', UNSUPPORTED, id="text-plain"),
        pytest.param("application/xml", b"<multi/>", UNSUPPORTED, id="xml"),
        pytest.param("application/octet-stream", b"\x00\x01", UNSUPPORTED, id="octet-stream"),
        pytest.param("application/json", b'[{"action": "multi"}]', NOT_OBJECT, id="json-list"),
        pytest.param("application/json", b'"multi"', NOT_OBJECT, id="json-string"),
        pytest.param("application/json", b"42", NOT_OBJECT, id="json-number"),
        pytest.param("application/json", b"null", NOT_OBJECT, id="json-null"),
        pytest.param("application/json", b'{"action": ', NOT_JSON, id="json-truncated"),
        pytest.param("application/json", b"", NOT_JSON, id="json-empty"),
        pytest.param("multipart/form-data", b"appId=x", "multipart", id="multipart-no-boundary"),
        pytest.param("multipart/form-data; boundary=b", FILE_PART, "file upload", id="file-part"),
    ],
)
def test_undocumented_or_unreadable_bodies_are_refused_with_400(
    sim: Sim, buckets: Buckets, content_type: str | None, body: bytes, reason: str
) -> None:
    name = upload(buckets)
    query = {k: str(v) for k, v in job_fields(name).items()}  # a valid request but for the body
    headers = {"Content-Type": content_type} if content_type else {}
    resp = requests.post(sim.api_url, params=query, data=body, headers=headers, timeout=10)
    assert resp.status_code == 400
    assert reason in error_message(resp)
    if reason == UNSUPPORTED:
        assert error_message(resp).startswith(UNSUPPORTED)
    assert sim.admin.jobs() == []
    (entry,) = sim.admin.requests()
    media_type = content_type.split(";")[0] if content_type else None
    assert (entry["status"], entry["action"], entry["content_type"]) == (400, "multi", media_type)


def test_get_reads_the_query_string_only(sim: Sim) -> None:
    fields = common(action="getMultiResults")
    with requests.Session() as session:  # one kept-alive connection for both requests
        resp = session.get(sim.api_url, json={**fields, "jobId": "x"}, timeout=10)
        assert (resp.status_code, resp.json()) == (403, INVALID_KEY)  # the body was not read
        resp = session.get(sim.api_url, params={**fields, "jobId": "x"}, timeout=10)
        assert resp.status_code == 400
        assert error_message(resp) == "Unknown jobId 'x'"


# several apps -------------------------------------------------------------------------------
def test_extra_app_creates_and_polls_its_own_jobs(sim: Sim, buckets: Buckets) -> None:
    job_b = create_job(sim, job_fields(upload(buckets, user="ub"), app=APP_B, key=DEV_B))
    job_main = create_job(sim, job_fields(upload(buckets, user="um")))
    assert wait_state(sim, job_b, APP_B, DEV_B) == "FINISHED"
    assert wait_state(sim, job_main) == "FINISHED"
    assert {j["jobId"]: j["app_id"] for j in sim.admin.jobs()} == {job_b: APP_B, job_main: APP}
    assert [j["jobId"] for j in sim.admin.jobs(app_id=APP_B)] == [job_b]
    assert sim.admin.jobs(app_id=APP_C) == []
    assert [e["userId"] for e in sim.admin.events(app_id=APP_B)] == ["ub"]
    assert [r["app_id"] for r in sim.admin.requests("multi")] == [APP_B, APP]
    assert sim.admin.apps() == [APP, APP_B, APP_C]
    resp = poll(sim, job_main, APP_B, DEV_B)  # another app's job is unknown
    assert (resp.status_code, error_message(resp)) == (400, f"Unknown jobId {job_main!r}")
    resp = post_json(sim, common(APP_B, DEV_B, "track") | {"userId": "u", "event": "E"})
    assert resp.status_code == 403  # an extra app has a development key only
    assert "requires the production key" in error_message(resp)


@pytest.mark.parametrize(
    ("app", "key"),
    [(APP_B, DEV), (APP_B, PROD), (APP, DEV_B), (APP_B, DEV_C), ("app-unknown", DEV_B)],
    ids=["main-dev-key-app-b", "main-prod-key-app-b", "b-key-main-app", "c-key-app-b", "unknown"],
)
def test_key_of_one_app_with_another_apps_id_is_invalid(
    sim: Sim, buckets: Buckets, app: str, key: str
) -> None:
    resp = post_json(sim, job_fields(upload(buckets), app=app, key=key))
    assert (resp.status_code, resp.json()) == (403, INVALID_KEY)
    assert sim.admin.jobs() == []


def test_keys_never_appear_in_reprs_or_admin_answers(sim: Sim, buckets: Buckets) -> None:
    create_job(sim, job_fields(upload(buckets), app=APP_B, key=DEV_B))
    post_json(sim, job_fields("x.csv", app=APP_B, key="wrong-key"))
    admin = sim.admin
    shown = [repr(sim.state.apps), repr(sim.state.apps.main), repr(admin)]
    shown += [json.dumps(x) for x in (admin.requests(), admin.jobs(), admin.stats())]
    shown += [json.dumps(admin.events()), json.dumps(admin.apps()), json.dumps(admin.config())]
    text = "\n".join(shown)
    assert APP_B in text
    assert not [s for s in (*SECRETS, "wrong-key") if s in text]


# readable buckets ---------------------------------------------------------------------------
def test_unreadable_bucket_is_400_and_creates_no_job(sim: Sim, buckets: Buckets) -> None:
    with pytest.raises(SimulatorAdminError):  # the knob is a list of names
        sim.admin.configure(readable_buckets=OTHER_BUCKET)
    config = sim.admin.configure(readable_buckets=[OTHER_BUCKET])
    assert config["readable_buckets"] == [OTHER_BUCKET]
    resp = post_json(sim, job_fields(upload(buckets, BUCKET)))
    assert resp.status_code == 400
    assert error_message(resp) == f"Leanplum cannot read bucket {BUCKET}"
    assert sim.admin.jobs() == []
    assert sim.admin.stats()["jobs_created"] == 0
    name = upload(buckets, BUCKET, user="in-main")  # same name, both buckets: which is read?
    upload(buckets, OTHER_BUCKET, user="in-other", name=name)
    job_id = create_job(sim, job_fields(name, bucket=OTHER_BUCKET))
    assert wait_state(sim, job_id) == "FINISHED"
    (job,) = sim.admin.jobs()
    assert (job["bucket"], job["file"], job["bytesRead"]) == (OTHER_BUCKET, name, job["size"])
    assert [e["userId"] for e in sim.admin.events(f"job:{job_id}")] == ["in-other"]
    sim.admin.reset()
    assert sim.admin.config()["readable_buckets"] == []


# job concurrency ----------------------------------------------------------------------------
def counts(stats: dict[str, Any]) -> tuple[int, ...]:
    """(unfinished now, peak, created)."""
    return tuple(stats[k] for k in ("unfinished_jobs", "peak_unfinished_jobs", "jobs_created"))


def test_stats_count_unfinished_jobs_and_reset_the_peak(sim: Sim, buckets: Buckets) -> None:
    assert counts(sim.admin.stats()) == (0, 0, 0)
    names = [upload(buckets) for _ in range(4)]
    sim.admin.configure(hang_jobs=1, pending_seconds=1.0)
    hung = create_job(sim, job_fields(names[0]))
    jobs = [create_job(sim, job_fields(n, app=APP_B, key=DEV_B)) for n in names[1:3]]
    now = sim.admin.stats()
    assert counts(now) == (3, 3, 3)
    assert now["pending_jobs"] == 3
    assert now["jobs_by_app"] == {APP: 1, APP_B: 2}
    assert now["peak_unfinished_by_app"] == {APP: 1, APP_B: 2}
    for job_id in jobs:
        assert wait_state(sim, job_id, APP_B, DEV_B) == "FINISHED"
    wait_for(lambda: sim.admin.stats()["running_jobs"] == 1, 10, "hung job RUNNING", 0.02)
    after = sim.admin.stats()  # RUNNING for ever: nothing changes any more
    assert counts(after) == (1, 3, 3)  # the hung job stays unfinished
    assert after["unfinished_by_app"] == {APP: 1, APP_B: 0}
    assert poll(sim, hung).json()["response"][0]["state"] == "RUNNING"
    assert counts(sim.admin.reset_stats()) == (1, 1, 3)
    create_job(sim, job_fields(names[3]))
    assert counts(sim.admin.stats()) == (2, 2, 4)
    sim.admin.reset()
    assert counts(sim.admin.stats()) == (0, 0, 0)


def test_a_finished_job_never_counts_towards_the_peak(sim: Sim, buckets: Buckets) -> None:
    sim.admin.configure(pending_seconds=0.0, running_seconds=0.0, fail_jobs=1)
    states = [wait_state(sim, create_job(sim, job_fields(upload(buckets)))) for _ in range(3)]
    assert states == ["FAILED", "FINISHED", "FINISHED"]  # one after the other, never two at once
    assert counts(sim.admin.stats()) == (0, 1, 3)


def test_job_stats_apply_every_state_change_before_counting_a_new_job() -> None:
    """No poll in between: a job whose clock says FINISHED is not counted when the next job
    is created (job clocks set in the past instead of waiting)."""
    stats = JobStats()

    def job(app: str, age_s: float, done: bool, fate: Fate = Fate.FINISH) -> Job:
        made = Job(uuid.uuid4().hex, app, BUCKET, "f.csv", 1, 10, "track", 1.0, 1.0, 10, fate)
        made.created_mono = time.monotonic() - age_s
        if done:
            made.done.set()
        return made

    stats.created(job(APP, age_s=10, done=True))  # FINISHED by now
    stats.created(job(APP, age_s=10, done=True, fate=Fate.FAIL))  # FAILED by now
    stats.created(job(APP_B, age_s=10, done=True, fate=Fate.HANG))  # RUNNING for ever
    stats.created(job(APP_B, age_s=10, done=False))  # RUNNING: rows still being checked
    stats.created(job(APP_C, age_s=0, done=False))  # PENDING
    snapshot = stats.snapshot()
    assert counts(snapshot) == (3, 3, 5)
    assert (snapshot["pending_jobs"], snapshot["running_jobs"]) == (1, 2)
    assert snapshot["peak_unfinished_by_app"] == {APP: 1, APP_B: 2, APP_C: 1}


def test_peak_is_exact_under_concurrent_creation(sim: Sim, buckets: Buckets) -> None:
    sim.admin.configure(pending_seconds=30.0)  # all stay PENDING during the test
    names = [upload(buckets) for _ in range(12)]
    apps = [(APP, DEV), (APP_B, DEV_B), (APP_C, DEV_C)] * 4

    def create(index: int) -> int:
        app, key = apps[index]
        return post_json(sim, job_fields(names[index], app=app, key=key)).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert list(pool.map(create, range(12))) == [200] * 12
    stats = sim.admin.stats()
    assert (stats["unfinished_jobs"], stats["peak_unfinished_jobs"]) == (12, 12)
    assert stats["jobs_by_app"] == stats["peak_unfinished_by_app"] == {APP: 4, APP_B: 4, APP_C: 4}
    assert len({j["jobId"] for j in sim.admin.jobs()}) == 12


# the command line ---------------------------------------------------------------------------
def _run_cli(args: list[str], extra_env: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    cmd = [sys.executable, "-m", "local_cloud.leanplum_sim", "--port", "0", "--app-id", APP]
    cmd += ["--dev-key", DEV, "--prod-key", PROD, *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_cli_extra_apps_from_flag_and_env_and_readable_buckets(
    storage_emulator: str, buckets: Buckets
) -> None:
    env = {"STORAGE_EMULATOR_HOST": storage_emulator}
    env["LEANPLUM_SIM_EXTRA_APPS"] = f"{APP_B}={DEV_B}, {APP_C}=overridden-by-flag"
    args = ["--extra-app", f"{APP_C}={DEV_C}", "--readable-bucket", OTHER_BUCKET]
    args += ["--pending-seconds", "0", "--running-seconds", "0"]
    proc = _run_cli(args, env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY "), line
        api_url = line.split(" ", 1)[1]
        admin = SimulatorAdmin(api_url)
        assert admin.apps() == [APP, APP_B, APP_C]
        assert admin.config()["readable_buckets"] == [OTHER_BUCKET]
        name = upload(buckets, OTHER_BUCKET)
        for app, key, status in ((APP_B, DEV_B, 200), (APP_C, DEV_C, 200), (APP_C, "x", 403)):
            fields = job_fields(name, bucket=OTHER_BUCKET, app=app, key=key)
            resp = requests.post(api_url, params={"action": "multi"}, json=fields, timeout=10)
            assert resp.status_code == status, resp.text
        resp = requests.post(api_url, json=job_fields(name, app=APP_B, key=DEV_B), timeout=10)
        assert error_message(resp) == f"Leanplum cannot read bucket {BUCKET}"
        assert admin.stats()["jobs_by_app"] == {APP_B: 1, APP_C: 1}
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert not [s for s in (*SECRETS, "overridden-by-flag") if s in out + err]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_bad_extra_app_exits_2_without_showing_the_key() -> None:
    flag, env = "--extra-app", "LEANPLUM_SIM_EXTRA_APPS"
    for args, environ in (
        ([flag, f"{APP_B}:{DEV_B}"], {}),  # no "="
        ([], {env: f"{APP_B}{DEV_B}"}),  # no "="
        ([flag, f"{APP}={DEV_B}"], {}),  # the main app again
    ):
        proc = _run_cli(args, environ)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, "extra app" in err, DEV_B in out + err) == (2, True, False), err
