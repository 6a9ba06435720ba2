"""python -m functions validate: exit codes, outputs, summary."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from functions.cli import main

GOOD = "userId,event,time\nu1,Buy,1748600000\nu2,Open,2025-05-30T10:00:00Z\n"
NOW = "2025-06-01T12:00:00Z"


def test_accepted_writes_output_report_rejected(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    out, report, rejected = tmp_path / "o.csv", tmp_path / "r.json", tmp_path / "x.csv"
    stdout = io.StringIO()
    code = main(
        [
            "validate",
            str(source),
            "--now",
            NOW,
            "--output",
            str(out),
            "--report",
            str(report),
            "--rejected",
            str(rejected),
        ],
        stdout=stdout,
    )
    assert code == 0
    assert out.read_text().startswith("userId,event,time\n")
    assert json.loads(report.read_text())["rows_written"] == 2
    assert rejected.read_text().startswith("row,column,reason,")
    assert "ACCEPTED" in stdout.getvalue()


def test_refused_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("userId,event\nu,e\n")
    stdout = io.StringIO()
    assert main(["validate", str(source), "--now", NOW], stdout=stdout) == 1
    assert "REFUSED" in stdout.getvalue() and "time" in stdout.getvalue()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["validate"]) == 2
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    assert main(["validate", str(source), "--now", "yesterday"]) == 2
    assert main(["validate", str(source), "--naive-timezone", "Mars/Base"]) == 2


def test_module_entry_point(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    done = subprocess.run(
        [sys.executable, "-m", "functions", "validate", str(source), "--now", NOW],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "ACCEPTED" in done.stdout
