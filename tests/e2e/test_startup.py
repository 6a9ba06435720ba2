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
