"""One local cloud for the end-to-end tests: real emulators, simulator, relay and functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from local_cloud.leanplum_sim.admin import SimulatorAdmin
from local_cloud.processes import wait_for
from local_cloud.results import pull_results
from local_cloud.stack import BUCKET, PROJECT, REPO_ROOT, STATE_BUCKET, LocalCloud, Settings

RESULT_SCHEMA = json.loads((REPO_ROOT / "schemas" / "result-message.schema.json").read_text())


class Pipeline:
    """What a test does to the running local cloud, through public interfaces only."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.sim = SimulatorAdmin(cloud.leanplum_admin_url)
        self._received: dict[str, list[dict[str, Any]]] = {}

    def subscribe_results(self) -> str:
        """A fresh subscription on the results topic: it sees only messages from now on."""
        from google.cloud.pubsub import SubscriberClient

        name = f"projects/{PROJECT}/subscriptions/test-{uuid.uuid4().hex[:12]}"
        SubscriberClient().create_subscription(
            name=name, topic=self.cloud.results_topic, ack_deadline_seconds=60
        )
        return name

    def upload(self, name: str, data: bytes) -> int:
        from functions import gcs

        blob = gcs.make_storage_client().bucket(BUCKET).blob(name)
        blob.upload_from_string(data, content_type="text/csv")
        return int(blob.generation or 0)

    def read(self, name: str, bucket: str = BUCKET) -> bytes:
        from functions import gcs

        return bytes(gcs.make_storage_client().bucket(bucket).blob(name).download_as_bytes())

    def read_uri(self, uri: str) -> bytes:
        """An object named by a ``gs://bucket/name`` URI of a result message."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return self.read(name, bucket)

    def assert_valid(self, message: dict[str, Any]) -> None:
        """Every published message must match the versioned JSON Schema in the repository."""
        jsonschema.validate(message["body"], RESULT_SCHEMA)
        body = message["body"]
        assert message["attributes"] == {
            "status": body["status"],
            "bucket": body["file"]["bucket"],
            "object": body["file"]["object"],
        }

    def results_for(
        self, subscription: str, name: str, deadline_s: float = 60
    ) -> list[dict[str, Any]]:
        """Messages about ``name``; those about other objects stay buffered for later calls."""
        seen = self._received.setdefault(subscription, [])

        def arrived(batch: list[dict[str, Any]]) -> bool:
            return any(m["attributes"]["object"] == name for m in seen + batch)

        if not arrived([]):
            seen.extend(pull_results(subscription, until=arrived, deadline_s=deadline_s))
        found = [m for m in seen if m["attributes"]["object"] == name]
        self._received[subscription] = [m for m in seen if m not in found]
        for message in found:
            self.assert_valid(message)
        return found

    def no_more_results(self, subscription: str, name: str, window_s: float = 3) -> bool:
        """True when no further message for ``name`` arrives within ``window_s``."""
        try:
            self.results_for(subscription, name, deadline_s=window_s)
        except TimeoutError:
            return True
        return False

    def sim_requests(self, action: str | None = None) -> list[dict[str, Any]]:
        return self.sim.requests(action)

    def sim_config(self, **knobs: Any) -> None:
        self.sim.configure(**knobs)

    def multi_for(self, name: str) -> list[dict[str, Any]]:
        """``multi`` requests for ``name``: Leanplum reads the parts the importer wrote for it
        under the reserved prefix (never the upload's own name, which a later upload could
        replace)."""
        from functions.naming import PARTS_PREFIX, object_key

        parts = f"{PARTS_PREFIX}{object_key(name)}/"
        return [
            r for r in self.sim_requests("multi")
            if r["params"].get("file") == name or r["params"].get("file", "").startswith(parts)
        ]  # fmt: skip

    def jobs_for(self, name: str, bucket: str = STATE_BUCKET) -> list[dict[str, Any]]:
        """``multi`` requests that reached Leanplum for ``name`` and were answered 200 (Leanplum
        reads the parts in the importer's state bucket, whatever bucket the upload landed in)."""
        return [
            r for r in self.multi_for(name)
            if r["params"].get("gcsBucket") == bucket and r.get("status") in (200, None)
        ]  # fmt: skip

    def function_log(self, function: str = "ingest-function") -> list[dict[str, Any]]:
        """The structured log lines a function wrote (every line must be JSON)."""
        lines = (self.cloud.log_dir / f"{function}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def log_mark(self, function: str = "ingest-function") -> int:
        """Where a function's log ends now: :meth:`wait_for_message` looks only past it."""
        return (self.cloud.log_dir / f"{function}.log").stat().st_size

    def wait_for_message(
        self, message: str, name: str, since: int, function: str = "ingest-function"
    ) -> None:
        """Wait, polling every 5 ms, until the function has logged ``message`` for ``name``:
        fast enough to freeze or kill an instance right after that step."""
        log = self.cloud.log_dir / f"{function}.log"
        wanted = f'"message": "{message}'

        def logged() -> bool:
            with log.open("rb") as lines:
                lines.seek(since)
                text = lines.read().decode(errors="replace")
            return any(wanted in line and name in line for line in text.splitlines())

        wait_for(logged, 60, f"{function}: {message}", max_interval_s=0.005)

    def steps_since(
        self, mark: int, step: str, function: str = "ingest-function"
    ) -> list[dict[str, Any]]:
        """The log lines of ``step`` written after ``mark`` (see :meth:`log_mark`)."""
        with (self.cloud.log_dir / f"{function}.log").open("rb") as lines:
            lines.seek(mark)
            text = lines.read().decode(errors="replace")
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [e for e in entries if e.get("step") == step]

    def steps(
        self, name: str, step: str, function: str = "ingest-function"
    ) -> list[dict[str, Any]]:
        return [
            e for e in self.function_log(function)
            if e.get("object") == name and e.get("step") == step
        ]  # fmt: skip

    def deliver(self, bucket: str, name: str, generation: int) -> int:
        """Deliver the finalize event of one object version to the ingest function, as Eventarc
        does (binary CloudEvent, the object resource as data); returns the HTTP status."""
        from functions import gcs
        from local_cloud.cloudevents import storage_finalized_headers

        blob = gcs.make_storage_client().bucket(bucket).get_blob(name, generation=generation)
        resource = dict(blob._properties) if blob is not None else {
            "bucket": bucket, "name": name, "generation": str(generation)}  # fmt: skip
        headers = storage_finalized_headers(bucket, name)
        reply = requests.post(self.cloud.ingest_url, json=resource, headers=headers, timeout=600)
        return reply.status_code

    def record(self, name: str, bucket: str = STATE_BUCKET) -> list[dict[str, Any]]:
        """Every import record of ``name`` (one per generation, in the state bucket), oldest
        first."""
        from functions import gcs
        from functions.config import RECORDS_PREFIX
        from functions.naming import is_content_claim

        blobs = gcs.make_storage_client().list_blobs(bucket, prefix=f"{RECORDS_PREFIX}{name}/")
        found = [json.loads(b.download_as_bytes()) for b in blobs if not is_content_claim(b.name)]
        return sorted(found, key=lambda r: int(r["generation"]))


#: Short local stand-ins for the cloud's 24 h deadline and 540 s lease, so that fault tests
#: reach them in seconds.
TEST_FUNCTION_ENV = {"POLL_DEADLINE_SECONDS": "10", "INGEST_LEASE_SECONDS": "5"}
FAULT_SUMMARY: list[dict[str, Any]] = []


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = Path(tmp_path_factory.mktemp("local-cloud"))
    with LocalCloud(Settings(state_dir=state, function_env=dict(TEST_FUNCTION_ENV))) as running:
        yield running


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Per fault test: events delivered, jobs started, messages published (for the record)."""
    if FAULT_SUMMARY:
        terminalreporter.section("fault tests: events delivered / jobs started / messages")
        for line in FAULT_SUMMARY:
            terminalreporter.write_line(json.dumps(line, sort_keys=True))


@pytest.fixture
def pipeline(cloud: LocalCloud) -> Pipeline:
    cloud.check_alive()
    return Pipeline(cloud)
