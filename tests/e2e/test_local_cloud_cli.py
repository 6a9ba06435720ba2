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
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from local_cloud.stack import BUCKET, REPO_ROOT, STATE_BUCKET, LocalCloud

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
