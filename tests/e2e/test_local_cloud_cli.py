"""``python -m local_cloud`` as a person trying the importer runs it, against the session's cloud.

Why as subprocesses: the commands find the cloud through the endpoints file it writes
(``LOCAL_CLOUD_DIR`` points them at the test cloud's directory instead of ``.local-cloud``),
set the emulator variables themselves and print to stdout; running them as a person does
checks all of that, not only the functions behind them.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from local_cloud import leanplum_sim
from local_cloud.caller_env import is_function_variable
from local_cloud.leanplum_sim.admin import SimulatorAdmin
from local_cloud.stack import (
    BUCKET,
    LEANPLUM_BUCKET_NAME,
    REPO_ROOT,
    START_QUEUE,
    STATE_BUCKET,
    LocalCloud,
)

from .conftest import Pipeline

pytestmark = pytest.mark.e2e

NOW = int(time.time())
GOOD = (
    "userId,event,time,params.plan\n"
    f"u1,app_open,{NOW - 3 * 86_400},free\n"
    f"u2,purchase,{NOW - 2 * 86_400},pro\n"
    f"u1,level_up,{NOW - 86_400},free\n"
)


def _env(cloud: LocalCloud) -> dict[str, str]:
    return {**os.environ, "LOCAL_CLOUD_DIR": str(cloud.settings.state_dir)}


def cli(cloud: LocalCloud, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_cloud", *args],
        cwd=REPO_ROOT, env=_env(cloud), capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def waited(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One good file uploaded with ``upload --wait``: its name, generation and the output."""
    path = Path(tmp_path_factory.mktemp("cli")) / "events.csv"
    path.write_text(GOOD)
    name = f"cli-{uuid.uuid4().hex[:8]}.csv"
    run = cli(cloud, "upload", str(path), name, "--wait", "--timeout", "120")
    uploaded = next(line for line in run.stdout.splitlines() if line.startswith("Uploaded "))
    return {
        "object": f"incoming/{name}",
        "generation": uploaded.rsplit("#", 1)[1],
        "run": run,
    }


def test_upload_of_an_ignored_name_says_so_at_once_and_why(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"userId": "u1"}\n')
    started = time.monotonic()

    run = cli(cloud, "upload", str(path), "--wait")

    assert run.returncode == 1, run  # --wait: no result will ever come, so no waiting
    assert time.monotonic() - started < 30
    assert f"gs://{BUCKET}/incoming/x.json will NOT be imported" in run.stdout
    assert "not named *.csv or *.csv.gz" in run.stdout  # the importer's own rule, verbatim
    assert "Waiting" not in run.stdout


def test_upload_wait_prints_the_files_own_result(waited: dict[str, Any]) -> None:
    run = waited["run"]
    assert run.returncode == 0, run
    assert "will NOT be imported" not in run.stdout
    [line] = [line for line in run.stdout.splitlines() if line.startswith("SUCCEEDED")]
    assert f"{waited['object']}#{waited['generation']}  sent 3  rejected 0" in line
    assert f"report: python -m local_cloud cat gs://{STATE_BUCKET}/" in run.stdout


def test_results_twice_shows_the_same_lines(cloud: LocalCloud, waited: dict[str, Any]) -> None:
    first = cli(cloud, "results")
    second = cli(cloud, "results")

    assert first.returncode == 0, first
    lines = first.stdout.splitlines()
    # The journal only grows: a result of another test may arrive in between, never vanish.
    assert second.stdout.splitlines()[: len(lines)] == lines
    mine = [line for line in lines if f"{waited['object']}#" in line]
    assert len(mine) == 1 and mine[0].startswith("SUCCEEDED"), lines

    as_json = [json.loads(line) for line in cli(cloud, "results", "--json").stdout.splitlines()]
    assert len(as_json) >= len(lines)
    [message] = [m for m in as_json if m["attributes"]["object"] == waited["object"]]
    assert message["body"]["file"]["generation"] == waited["generation"]
    assert message["attributes"]["status"] == message["body"]["status"] == "SUCCEEDED"


def test_cat_reads_the_gs_uris_of_a_result(cloud: LocalCloud, waited: dict[str, Any]) -> None:
    messages = [json.loads(line) for line in cli(cloud, "results", "--json").stdout.splitlines()]
    [message] = [m for m in messages if m["attributes"]["object"] == waited["object"]]
    uris = message["body"]["uris"]

    report = cli(cloud, "cat", uris["report"])
    normalized = cli(cloud, "cat", uris["normalized"])
    part = cli(cloud, "cat", uris["parts"][0])
    listing = cli(cloud, "cat", uris["report"].rsplit("/", 1)[0] + "/")
    missing = cli(cloud, "cat", f"gs://{STATE_BUCKET}/no/such/object")

    assert report.returncode == 0, report
    assert isinstance(json.loads(report.stdout), dict)
    assert normalized.stdout.splitlines()[0].startswith("userId,event,time")
    assert part.stdout == normalized.stdout  # Leanplum read the very bytes of the rewrite
    assert uris["report"] in listing.stdout
    assert missing.returncode == 1 and "No object" in missing.stderr


def test_results_follow_prints_a_new_result(cloud: LocalCloud, pipeline: Pipeline) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "local_cloud", "results", "--follow"],
        cwd=REPO_ROOT, env=_env(cloud), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    stdout = follower.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        name = f"incoming/follow-{uuid.uuid4().hex[:8]}.csv"
        generation = pipeline.upload(name, GOOD.encode())
        end = time.monotonic() + 120
        while True:
            line = lines.get(timeout=max(0.1, end - time.monotonic()))
            if f"{name}#{generation}" in line:
                break
        assert line.startswith("SUCCEEDED"), line
    finally:
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0


# --------------------------------------------------------------------------- the stack's shape


def test_the_cloud_has_a_start_queue_a_leanplum_bucket_and_a_second_app(cloud: LocalCloud) -> None:
    from google.cloud import tasks_v2

    from functions import gcs
    from functions.cloud_tasks_client import make_tasks_client

    client = make_tasks_client()
    try:
        start = client.get_queue(name=cloud.start_queue_path)
        poll = client.get_queue(name=cloud.queue_path)
    finally:
        client.transport.close()
    assert cloud.start_queue_path.endswith(f"/queues/{START_QUEUE}")
    assert start.retry_config.max_attempts == -1  # files wait for a slot without limit
    assert start.retry_config.min_backoff.total_seconds() == 0.5
    assert start.retry_config.max_backoff.total_seconds() == 3.0
    assert start.state == tasks_v2.Queue.State.RUNNING
    env = cloud.function_env()
    assert poll.retry_config.max_attempts == int(env["POLL_MAX_ATTEMPTS"])
    assert env["START_QUEUE"] == cloud.start_queue_path
    assert "LEANPLUM_BUCKET" not in env  # the functions' default ("none") stays
    assert gcs.make_storage_client().lookup_bucket(cloud.leanplum_bucket) is not None
    assert cloud.leanplum_bucket == LEANPLUM_BUCKET_NAME
    assert env["LEANPLUM_DEV_KEY_SECOND"] == cloud.second_app_dev_key != cloud.leanplum_dev_key
    assert env["LEANPLUM_APP_IDS"] == f"second={cloud.second_app_id}"
    # The simulator knows the second app with the very key the functions get (400: no such
    # job, so the key was accepted; a wrong key is refused first, with 403).
    for key, status in ((cloud.second_app_dev_key, 400), (cloud.leanplum_dev_key, 403)):
        reply = requests.post(
            cloud.leanplum_api_url,
            json={"action": "getMultiResults", "apiVersion": "1.0.6", "jobId": "none",
                  "appId": cloud.second_app_id, "clientKey": key},
            timeout=10,
        )  # fmt: skip
        assert reply.status_code == status, reply.text
        assert ("access key" in reply.text) == (status == 403), reply.text
    described = json.loads((cloud.settings.state_dir / "endpoints.json").read_text())
    assert described["start_queue"] == cloud.start_queue_path
    assert described["leanplum_bucket"] == LEANPLUM_BUCKET_NAME
    assert described["leanplum"]["mode"] == "simulator"
    assert cloud.second_app_dev_key not in json.dumps(described)


# --------------------------------------------------------------------------- your own Leanplum


def _descendants(pid: int) -> dict[int, list[str]]:
    """Every process below ``pid`` (Linux /proc), with its command line."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, list[str]] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                try:
                    raw = (Path("/proc") / str(child) / "cmdline").read_bytes()
                except OSError:
                    continue
                found[child] = raw.decode(errors="replace").split("\0")
                todo.append(child)
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _own_cli(state: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_cloud", *args],
        cwd=REPO_ROOT, env={**env, "LOCAL_CLOUD_DIR": str(state)}, capture_output=True,
        text=True, timeout=180, check=False,
    )  # fmt: skip


def _clean_environ() -> dict[str, str]:
    """This process's environment without any of the functions' settings (the session cloud's
    tests may run in it): the test says exactly which ones the caller sets."""
    return {k: v for k, v in os.environ.items() if not is_function_variable(k)}


def test_up_with_a_leanplum_url_but_no_key_fails_before_starting_anything(tmp_path: Path) -> None:
    env = {**_clean_environ(), "LEANPLUM_API_URL": "http://127.0.0.1:9/api"}
    env["LEANPLUM_APP_ID"] = "app_yours"

    run = _own_cli(tmp_path, env, "up")

    assert run.returncode == 1, run
    assert "LEANPLUM_DEV_KEY is missing" in run.stderr
    assert "Nothing was started" in run.stderr
    assert not (tmp_path / "serve.pid").exists() and not (tmp_path / "logs").exists()


def test_up_against_your_own_leanplum_uses_exactly_its_url_app_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LEANPLUM_API_URL``/``_APP_ID``/``_DEV_KEY`` in the caller's environment: no simulator
    of the stack's own; the file's job reaches the Leanplum the caller named (here a simulator
    this test starts, with an app and key of its own, standing for "your real Leanplum")."""
    app_id = f"app_yours_{uuid.uuid4().hex[:6]}"
    dev_key = "dev_yours_" + secrets.token_hex(12)
    yours = leanplum_sim.start(app_id, dev_key, "prod_yours_" + secrets.token_hex(12), seed=1)
    state = tmp_path / "cloud"
    env = {
        **_clean_environ(),
        "LEANPLUM_API_URL": yours.api_url,
        "LEANPLUM_APP_ID": app_id,
        "LEANPLUM_DEV_KEY": dev_key,
        "MAX_RUNNING_JOBS": "2",  # a setting passed through to both functions
        "POLL_FIRST_DELAY_SECONDS": "1",  # overrides the real-Leanplum default of 5 s
        "STATE_BUCKET": "someone-elses-bucket",  # wiring: ignored, the local cloud sets it
    }
    try:
        up = _own_cli(state, env, "up")
        assert up.returncode == 0, up
        assert f"the REAL Leanplum at {yours.api_url}, app id {app_id}" in up.stdout
        assert "Ignored from your environment: STATE_BUCKET" in up.stdout
        info = json.loads((state / "endpoints.json").read_text())
        assert info["leanplum"] == {"mode": "real", "api_url": yours.api_url, "app_id": app_id}
        assert "leanplum-simulator" not in info["parts"]
        assert not (state / "logs" / "leanplum-simulator.log").exists()
        below = _descendants(int((state / "serve.pid").read_text()))
        assert not [cmd for cmd in below.values() if "local_cloud.leanplum_sim" in cmd], below
        functions = [pid for pid, cmd in below.items() if "functions-framework" in " ".join(cmd)]
        assert len(functions) >= 2, below
        for pid in functions:
            seen = _environ(pid)
            assert seen["LEANPLUM_API_URL"] == yours.api_url
            assert seen["LEANPLUM_APP_ID"] == app_id
            assert seen["LEANPLUM_DEV_KEY"] == dev_key
            assert seen["MAX_RUNNING_JOBS"] == "2"
            assert seen["STATE_BUCKET"] == STATE_BUCKET
            assert "LEANPLUM_DEV_KEY_SECOND" not in seen and "LEANPLUM_APP_IDS" not in seen

        # Your Leanplum reads the file from the local Cloud Storage.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", info["env"]["STORAGE_EMULATOR_HOST"])
        path = tmp_path / "events.csv"
        path.write_text(GOOD)
        upload = _own_cli(state, env, "upload", str(path), "yours.csv", "--wait")
        assert upload.returncode == 0, upload
        assert "SUCCEEDED" in upload.stdout and "sent 3" in upload.stdout, upload.stdout
        [job] = SimulatorAdmin(yours.api_url).jobs()
        assert (job["app_id"], job["state"], job["successesCount"]) == (app_id, "FINISHED", 3)
        [multi] = SimulatorAdmin(yours.api_url).requests("multi")
        assert multi["params"]["appId"] == app_id and multi["key_class"] == "development"
    finally:
        down = _own_cli(state, env, "down")
        yours.stop()
    assert down.returncode == 0, down
    assert not (state / "serve.pid").exists()
    printed = up.stdout + up.stderr + upload.stdout + upload.stderr + down.stdout
    for text in [printed, *(p.read_text() for p in state.rglob("*") if p.is_file())]:
        assert dev_key not in text
