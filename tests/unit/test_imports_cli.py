"""The operator's ``imports`` commands over the in-memory store (same code as against GCS)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from functions import imports_cli
from functions.leanplum import AnswerLost
from tests.unit.fakes import BUCKET, STATE, Harness, events_csv


def run(h: Harness, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    imports_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["imports", "--state-bucket", STATE, *argv])
    out = io.StringIO()
    return imports_cli.run(args, out, objects=h.store), out.getvalue()


def three_files() -> tuple[Harness, dict[str, int]]:
    """One good, one refused and one failed (lost job-start answer) file."""
    h = Harness()
    versions = {}
    versions["good"] = h.upload("incoming/good.csv", events_csv(4))
    h.run_to_end("incoming/good.csv", versions["good"])
    versions["refused"] = h.upload("incoming/refused.csv", b"user,what\nu,e\n")
    h.deliver("incoming/refused.csv", versions["refused"])
    versions["failed"] = h.upload("incoming/failed.csv", events_csv(3, event="other"))
    h.leanplum.start_errors = [AnswerLost("multi: no answer within 60.0 s")]
    h.deliver("incoming/failed.csv", versions["failed"])
    return h, versions


def test_list_shows_every_version_with_its_status() -> None:
    h, _ = three_files()
    code, text = run(h, "--json", "list", f"gs://{BUCKET}/incoming/")
    rows = {r["object"]: r for r in json.loads(text)}
    assert code == 0
    assert {k: v["status"] for k, v in rows.items()} == {
        "incoming/good.csv": "SUCCEEDED", "incoming/refused.csv": "REJECTED",
        "incoming/failed.csv": "FAILED",
    }  # fmt: skip
    assert rows["incoming/good.csv"]["rows_sent"] == 4
    _, table = run(h, "list", f"gs://{BUCKET}/incoming/", "--status", "failed")
    assert "incoming/failed.csv" in table and "incoming/good.csv" not in table
    _, recent = run(h, "--json", "list", f"gs://{BUCKET}/incoming/", "--since", "1h")
    assert len(json.loads(recent)) == 3


def test_show_prints_the_timeline_and_every_uri() -> None:
    h, versions = three_files()
    code, text = run(h, "show", f"gs://{BUCKET}/incoming/good.csv")
    assert code == 0
    assert f"incoming/good.csv#{versions['good']}: SUCCEEDED" in text
    for state in ("RECEIVED", "VALIDATED", "JOB_STARTING", "JOB_STARTED", "FINISHED"):
        assert state in text
    assert f"original: gs://{STATE}/importer/archive/" in text and "parts: gs://" in text
    code, text = run(h, "show", f"gs://{BUCKET}/incoming/nothing.csv")
    assert code == 1 and "no import record" in text


def test_retry_refuses_when_a_job_may_exist_until_leanplum_was_checked() -> None:
    h, versions = three_files()
    failed = f"gs://{BUCKET}/incoming/failed.csv#{versions['failed']}"
    code, text = run(h, "retry", failed)
    assert code == 1 and "--i-checked-leanplum" in text
    code, text = run(h, "retry", failed, "--i-checked-leanplum")
    assert code == 0, text
    newer = h.store.stat(BUCKET, "incoming/failed.csv")
    assert newer is not None and newer.generation != versions["failed"]
    h.run_to_end("incoming/failed.csv", newer.generation)  # not a DUPLICATE: claims released
    statuses = [m["status"] for m in h.messages_for("incoming/failed.csv")]
    assert statuses == ["FAILED", "SUCCEEDED"]


def test_retry_never_reimports_a_success_without_the_second_flag() -> None:
    h, versions = three_files()
    good = f"gs://{BUCKET}/incoming/good.csv#{versions['good']}"
    code, text = run(h, "retry", good, "--i-checked-leanplum")
    assert code == 1 and "--even-if-it-succeeded" in text
    assert run(h, "retry", good, "--even-if-it-succeeded")[0] == 0


def test_failed_rows_writes_the_rows_ready_to_fix_and_their_reasons(tmp_path: Path) -> None:
    h = Harness()
    good = events_csv(30).decode().splitlines()
    generation = h.upload("incoming/mixed.csv", ("\n".join([*good, "u,e,never"]) + "\n").encode())
    h.leanplum.warn_rows = {2}
    h.run_to_end("incoming/mixed.csv", generation)
    target = tmp_path / "fix.csv"
    code, text = run(h, "failed-rows", f"gs://{BUCKET}/incoming/mixed.csv#{generation}", "-o",
                     str(target))  # fmt: skip
    assert code == 0, text
    assert list(csv.reader(target.open())) == [["userId", "event", "time", "params.source"],
                                               ["u", "e", "never"]]  # fmt: skip
    leanplum = list(csv.reader(target.with_suffix(".leanplum.csv").open()))
    assert leanplum[0] == ["userId", "event", "time", "params.source"] and len(leanplum) == 2
    reasons = list(csv.reader(target.with_suffix(".reasons.csv").open()))
    assert [r[0] for r in reasons[1:]] == ["fix.csv", "fix.leanplum.csv"]
    assert reasons[2][2] == "Unknown parameter"


def test_no_state_bucket_is_a_usage_error() -> None:
    args = argparse.Namespace(state_bucket=None, action="list")
    assert imports_cli.run(args, io.StringIO(), objects=Harness().store) == 2
