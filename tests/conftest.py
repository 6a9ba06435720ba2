"""Fixtures shared by the test folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local_cloud.processes import ManagedProcess, free_port, wait_for
from local_cloud.stack import fake_gcs_binary


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fake-gcs-server of its own (no notifications) for contract tests; yields its URL and
    points ``STORAGE_EMULATOR_HOST`` at it for the session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "fake-gcs-contract",
        [str(fake_gcs_binary()), "-backend", "memory", "-scheme", "http",
         "-host", "127.0.0.1", "-port", str(port), "-log-level", "error"],
        env={}, log_dir=tmp_path_factory.mktemp("storage-emulator"),
    )  # fmt: skip

    def answers() -> bool:
        process.check_alive()
        try:
            return requests.get(f"{url}/storage/v1/b", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    process.start()
    patch = pytest.MonkeyPatch()
    try:
        wait_for(answers, 30, "fake-gcs-server")
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url
    finally:
        patch.undo()
        process.stop()
