"""The operator's ``python -m functions imports`` against the local cloud's Cloud Storage."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest

from functions.cli import main
from local_cloud.stack import BUCKET, STATE_BUCKET

from .conftest import Pipeline

pytestmark = pytest.mark.e2e

DAY = 86_400


def events(rows: int) -> bytes:
    now = int(time.time())
    lines = ["userId,event,time", *(f"u{i % 3},open,{now - DAY - i}" for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["imports", "--state-bucket", STATE_BUCKET, *argv], stdout=out)
    return code, out.getvalue()


def test_list_show_and_retry_after_a_good_a_refused_and_a_failing_file(
    pipeline: Pipeline,
) -> None:
    subscription = pipeline.subscribe_results()
    run = f"incoming/ops-{uuid.uuid4().hex[:8]}/"
    names = {"good": run + "good.csv", "refused": run + "refused.csv", "failed": run + "failed.csv"}
    pipeline.upload(names["good"], events(5))
    pipeline.results_for(subscription, names["good"])
    pipeline.upload(names["refused"], b"user,what\nu,e\n")
    pipeline.results_for(subscription, names["refused"])
    pipeline.sim_config(fail_jobs=1)
    try:
        failed_generation = pipeline.upload(names["failed"], events(4))
        pipeline.results_for(subscription, names["failed"])
    finally:
        pipeline.sim_config(fail_jobs=0)

    code, text = cli("--json", "list", f"gs://{BUCKET}/{run}")
    assert code == 0
    statuses = {row["object"]: row["status"] for row in json.loads(text)}
    assert statuses == {names["good"]: "SUCCEEDED", names["refused"]: "REJECTED",
                        names["failed"]: "FAILED"}  # fmt: skip

    code, text = cli("show", f"gs://{BUCKET}/{names['failed']}")
    assert code == 0 and "JOB_STARTED" in text and "FAILED" in text and "original: gs://" in text

    target = f"gs://{BUCKET}/{names['failed']}#{failed_generation}"
    code, text = cli("retry", target)
    assert code == 1 and "--i-checked-leanplum" in text
    code, text = cli("retry", target, "--i-checked-leanplum")
    assert code == 0, text
    results: list[dict[str, Any]] = pipeline.results_for(subscription, names["failed"])
    assert [m["body"]["status"] for m in results] == ["SUCCEEDED"]
    assert results[0]["body"]["file"]["generation"] != str(failed_generation)


def test_failed_rows_writes_exactly_the_bad_rows(pipeline: Pipeline, tmp_path: Any) -> None:
    subscription = pipeline.subscribe_results()
    name = f"incoming/ops-{uuid.uuid4().hex[:8]}/mixed.csv"
    good = events(20).decode().splitlines()
    generation = pipeline.upload(name, ("\n".join([*good, "u9,open,not-a-time"]) + "\n").encode())
    [result] = pipeline.results_for(subscription, name)
    assert result["body"]["status"] == "PARTIAL"
    target = tmp_path / "fix.csv"
    code, text = cli("failed-rows", f"gs://{BUCKET}/{name}#{generation}", "-o", str(target))
    assert code == 0, text
    assert target.read_text().splitlines() == ["userId,event,time", "u9,open,not-a-time"]
    reasons = target.with_suffix(".reasons.csv").read_text().splitlines()
    assert len(reasons) == 2 and reasons[1].startswith("fix.csv,22,")
