"""A file above Leanplum's 100 MB limit: split between users, one job per part, one message."""

from __future__ import annotations

import csv
import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud.stack import BUCKET, LocalCloud, Settings

from .conftest import FAULT_SUMMARY, TEST_FUNCTION_ENV, Pipeline

pytestmark = pytest.mark.e2e

TARGET_BYTES = 250 * 1000 * 1000
DAY = 86_400


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A local cloud of its own whose poll deadline leaves the simulator time to check half a
    million rows per job (the session cloud's 10 s deadline is for the time-out test)."""
    state = Path(tmp_path_factory.mktemp("local-cloud-large"))
    env = {**TEST_FUNCTION_ENV, "POLL_DEADLINE_SECONDS": "600"}
    with LocalCloud(Settings(state_dir=state, function_env=env)) as running:
        yield running


def big_csv(path: str) -> int:
    """About 250 MB: wide rows (a long description parameter) keep the row count moderate."""
    now = int(time.time())
    description = "x" * 440
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("userId,event,time,params.description\n")
        while out.tell() < TARGET_BYTES:
            lines = [
                f"user-{(rows + i) % 50_000:05d},page_view,{now - DAY - (rows + i) % 1_000_000},"
                f"{description}\n"
                for i in range(10_000)
            ]
            out.write("".join(lines))
            rows += len(lines)
    return rows


def test_a_250_mb_file_makes_three_parts_three_jobs_one_message(
    pipeline: Pipeline, tmp_path: pytest.TempPathFactory
) -> None:
    from functions import gcs

    source = os.path.join(str(tmp_path), "big.csv")
    rows = big_csv(source)
    subscription = pipeline.subscribe_results()
    name = f"incoming/big-{uuid.uuid4().hex[:8]}.csv"
    started = time.monotonic()
    blob = gcs.make_storage_client().bucket(BUCKET).blob(name)
    blob.upload_from_filename(source, content_type="text/csv")

    [result] = pipeline.results_for(subscription, name, deadline_s=600)
    body = result["body"]
    assert body["status"] == "SUCCEEDED", body["reason"]
    assert body["counts"]["rows_total"] == rows
    assert body["counts"]["leanplum_successes"] == rows
    assert len(body["uris"]["parts"]) == 3
    jobs = [r for r in pipeline.sim_requests("multi") if r.get("status") == 200
            and r["params"]["file"].startswith(f"importer/parts/{name}/")]  # fmt: skip
    assert len(jobs) == 3
    assert len(body["jobs"]) == 3
    # Every part is a valid CSV under the limit, with the header, and no user spans two parts.
    users_by_part: list[set[str]] = []
    for uri in body["uris"]["parts"]:
        bucket, _, part = uri.removeprefix("gs://").partition("/")
        blob = gcs.make_storage_client().bucket(bucket).get_blob(part)
        assert blob is not None and blob.size is not None
        assert blob.size <= 100 * 1000 * 1000
        reader = csv.reader(io.StringIO(blob.download_as_text()))
        assert next(reader) == ["userId", "event", "time", "params.description"]
        users_by_part.append({row[0] for row in reader})
    assert sum(len(users) for users in users_by_part) == len(set().union(*users_by_part))
    assert pipeline.no_more_results(subscription, name)
    FAULT_SUMMARY.append({
        "test": "file_250_mb", "bytes": os.path.getsize(source), "rows": rows,
        "events_delivered": 1, "parts": 3, "jobs_started": len(jobs), "messages_published": 1,
        "seconds_upload_to_result": round(time.monotonic() - started, 1),
    })  # fmt: skip
