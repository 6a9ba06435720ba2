"""A deployed function with a missing setting fails at start-up, naming it (a real process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
ENV = {
    "LEANPLUM_APP_ID": "app",
    "LEANPLUM_DEV_KEY": "dev-key-for-unit-tests",
    "TASKS_QUEUE": "projects/p/locations/l/queues/q",
}


def test_a_missing_setting_stops_the_function_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RESULTS_TOPIC", raising=False)
    monkeypatch.setenv("FUNCTION_TARGET", "poll_import")
    framework = str(Path(sys.executable).parent / "functions-framework")
    completed = subprocess.run(
        [framework, "--target", "poll_import", "--source", MAIN, "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=Path(MAIN).parent, check=False,
    )  # fmt: skip
    assert completed.returncode != 0
    assert "RESULTS_TOPIC is missing" in completed.stderr
    assert "dev-key-for-unit-tests" not in completed.stderr


def test_the_command_line_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    """``python -m functions validate`` in a process of its own (unit tests run in-process)."""
    source = tmp_path / "in.csv"
    source.write_text("userId,event,time\nu1,open,2026-11-20T00:00:00Z\n")
    command = [sys.executable, "-m", "functions", "validate", str(source)]
    done = subprocess.run(
        [*command, "--now", "2026-11-21T00:00:00Z"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(MAIN).parent,
    )
    assert done.returncode == 0, done.stderr
    assert "ACCEPTED" in done.stdout
