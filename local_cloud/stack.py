"""The whole local cloud: emulators, the Leanplum simulator, the relay and both functions.

One :class:`LocalCloud` starts everything on 127.0.0.1 (free ports unless told otherwise),
creates the buckets, topics, subscriptions and queues the way ``infra/`` does in the cloud, and
stops every process it started, also when starting fails half-way. The functions run under
functions-framework exactly as deployed; only the endpoint variables differ. With
:attr:`Settings.real_leanplum` the simulator is not started and the functions talk to that
Leanplum with exactly its URL, app id and key.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.leanplum_apps import key_variable
from local_cloud.caller_env import is_function_variable
from local_cloud.processes import ManagedProcess, port_open, wait_for
from local_cloud.queues import UNLIMITED_ATTEMPTS, QueueSpec, create_queues
from local_cloud.resources import (
    create_buckets,
    create_ingest_push,
    create_topics,
    fake_gcs_command,
)
from local_cloud.stack_settings import (
    APP_ID,
    BUCKET,
    LEANPLUM_BUCKET_NAME,
    LOCATION,
    MANUAL_BUCKET,
    PROJECT,
    QUEUE,
    REPO_ROOT,
    RESULTS_SUBSCRIPTION,
    RESULTS_TOPIC,
    SECOND_APP,
    SECOND_APP_ID,
    SIM_EXTRA_APPS_ENV,
    START_DEADLINE_S,
    START_QUEUE,
    STATE_BUCKET,
    TASKS_SERVICE_ACCOUNT,
    Ports,
    Settings,
    fake_gcs_binary,
)

__all__ = [
    "APP_ID",
    "BUCKET",
    "LEANPLUM_BUCKET_NAME",
    "LOCATION",
    "MANUAL_BUCKET",
    "PROJECT",
    "QUEUE",
    "REPO_ROOT",
    "RESULTS_SUBSCRIPTION",
    "RESULTS_TOPIC",
    "SECOND_APP",
    "SECOND_APP_ID",
    "SIM_EXTRA_APPS_ENV",
    "START_DEADLINE_S",
    "START_QUEUE",
    "STATE_BUCKET",
    "TASKS_SERVICE_ACCOUNT",
    "LocalCloud",
    "Ports",
    "Settings",
    "fake_gcs_binary",
]


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
        self._second_dev_key = "dev_" + secrets.token_hex(16)
        self._task_token_key = secrets.token_hex(32)
        self._prod_key = "prod_" + secrets.token_hex(16)
        self.pubsub_kind = "builtin"

    # -- Leanplum ---------------------------------------------------------------------------
    @property
    def uses_simulator(self) -> bool:
        """False when the functions talk to :attr:`Settings.real_leanplum`."""
        return self.settings.real_leanplum is None

    @property
    def leanplum_app_id(self) -> str:
        real = self.settings.real_leanplum
        return real.app_id if real else APP_ID

    @property
    def leanplum_dev_key(self) -> str:
        """The run's development key, for tests that prove it leaks nowhere. Never print it."""
        real = self.settings.real_leanplum
        return real.dev_key if real else self._dev_key

    @property
    def second_app_id(self) -> str:
        """The simulator's second app (route files to it with ``LEANPLUM_APP_ROUTES``)."""
        return SECOND_APP_ID

    @property
    def second_app_dev_key(self) -> str:
        """The second app's development key, for tests. Never print it."""
        return self._second_dev_key

    @property
    def leanplum_api_url(self) -> str:
        real = self.settings.real_leanplum
        return real.api_url if real else f"http://127.0.0.1:{self.ports.leanplum}/api"

    @property
    def leanplum_admin_url(self) -> str:
        """The simulator's admin API; there is none when the functions talk to a real one."""
        if not self.uses_simulator:
            raise RuntimeError(f"no simulator: the functions talk to {self.leanplum_api_url}")
        return f"http://127.0.0.1:{self.ports.leanplum}/_sim"

    # -- addresses --------------------------------------------------------------------------
    @property
    def leanplum_bucket(self) -> str:
        """The bucket standing for Leanplum's own (set ``LEANPLUM_BUCKET`` to it to use it)."""
        return LEANPLUM_BUCKET_NAME

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
    def start_queue_path(self) -> str:
        return f"projects/{PROJECT}/locations/{LOCATION}/queues/{START_QUEUE}"

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
        """The functions' configuration, as Terraform sets it in the cloud (keys included).

        Both functions get the same variables. With the simulator, its second app's key is
        ``LEANPLUM_DEV_KEY_SECOND`` and ``LEANPLUM_APP_IDS`` declares it (a declared app needs
        an id and a key); :attr:`Settings.function_env` overrides any of them.
        """
        env = {
            "LEANPLUM_APP_ID": self.leanplum_app_id,
            "LEANPLUM_DEV_KEY": self.leanplum_dev_key,
            "LEANPLUM_API_URL": self.leanplum_api_url,
            "RESULTS_TOPIC": self.results_topic,
            "STATE_BUCKET": STATE_BUCKET,
            "TASKS_QUEUE": self.queue_path,
            "START_QUEUE": self.start_queue_path,
            "POLLER_URL": self.poller_url,
            "TASKS_SERVICE_ACCOUNT": TASKS_SERVICE_ACCOUNT,
            "POLL_FIRST_DELAY_SECONDS": "1",
            "POLL_MAX_ATTEMPTS": str(self.settings.queue_max_attempts),
        }
        if self.uses_simulator:
            env[key_variable(SECOND_APP)] = self._second_dev_key
            env["LEANPLUM_APP_IDS"] = f"{SECOND_APP}={SECOND_APP_ID}"
        env.update(self.settings.function_env)
        return env

    def queue_specs(self) -> list[QueueSpec]:
        """The poll queue (its max_attempts is the functions' ``POLL_MAX_ATTEMPTS``, so the
        poller's last attempt is the queue's) and the start queue (unlimited attempts)."""
        settings = self.settings
        return [
            QueueSpec(
                self.queue_path,
                max_attempts=int(self.function_env()["POLL_MAX_ATTEMPTS"]),
                min_backoff_s=settings.queue_min_backoff_s,
                max_backoff_s=settings.queue_max_backoff_s,
            ),
            QueueSpec(
                self.start_queue_path,
                max_attempts=UNLIMITED_ATTEMPTS,
                min_backoff_s=settings.start_queue_min_backoff_s,
                max_backoff_s=settings.start_queue_max_backoff_s,
            ),
        ]

    def describe(self) -> dict[str, Any]:
        """Endpoints and names, without secrets: written to ``endpoints.json`` and printed."""
        leanplum: dict[str, Any] = {
            "mode": "simulator" if self.uses_simulator else "real",
            "api_url": self.leanplum_api_url,
            "app_id": self.leanplum_app_id,
        }
        if self.uses_simulator:
            leanplum["admin_url"] = self.leanplum_admin_url
            leanplum["apps"] = {SECOND_APP: SECOND_APP_ID}
        overridden = sorted(self.settings.function_env)
        return {
            "bucket": BUCKET,
            "incoming_prefix": "incoming/",
            "state_bucket": STATE_BUCKET,
            "leanplum_bucket": self.leanplum_bucket,
            "results_topic": self.results_topic,
            "results_subscription": self.results_subscription,
            "queue": self.queue_path,
            "start_queue": self.start_queue_path,
            "pubsub_emulator": self.pubsub_kind,
            "leanplum_api_url": self.leanplum_api_url,
            "leanplum": leanplum,
            "function_settings_overridden": overridden,  # names only: some are keys
            "ingest_url": self.ingest_url,
            "poller_url": self.poller_url,
            "relay_url": f"http://127.0.0.1:{self.ports.relay}/",
            "parts": [process.name for process in self.processes],
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
            create_topics()
            self._start_gcs()
            self._start_tasks()
            if self.uses_simulator:
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

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        inherited: Mapping[str, str] | None = None,
    ) -> None:
        base = os.environ if inherited is None else inherited
        process = ManagedProcess(
            name, argv, env={**base, **env}, log_dir=self.log_dir, cwd=REPO_ROOT
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

    def _start_gcs(self) -> None:
        self._spawn("fake-gcs-server", fake_gcs_command(self.ports.gcs), {}, self.ports.gcs)
        create_buckets()

    def _start_tasks(self) -> None:
        argv = [sys.executable, "-m", "local_cloud.tasks_emulator",
                "--host", "127.0.0.1", "--port", str(self.ports.tasks)]  # fmt: skip
        self._spawn("cloud-tasks-emulator", argv, {}, self.ports.tasks)
        create_queues(f"projects/{PROJECT}/locations/{LOCATION}", self.queue_specs())

    def _start_leanplum_sim(self) -> None:
        seed = [] if "--seed" in self.settings.sim_args else ["--seed", "1"]  # repeatable faults
        argv = [sys.executable, "-m", "local_cloud.leanplum_sim", "--host", "127.0.0.1",
                "--port", str(self.ports.leanplum), *seed,
                *self.settings.sim_args]  # fmt: skip
        env = {
            "LEANPLUM_SIM_APP_ID": APP_ID,
            "LEANPLUM_SIM_DEV_KEY": self._dev_key,
            "LEANPLUM_SIM_PROD_KEY": self._prod_key,
            SIM_EXTRA_APPS_ENV: f"{SECOND_APP_ID}={self._second_dev_key}",
        }
        self._spawn("leanplum-simulator", argv, env, self.ports.leanplum)

    def _start_functions(self) -> None:
        framework = str(Path(sys.executable).parent / "functions-framework")
        common = {**self.function_env(), "PYTHONUNBUFFERED": "1", "THREADS": "8"}
        # The functions see exactly :meth:`function_env`: a setting or app key that happens to
        # be in this process's environment must not reach them by inheritance.
        inherited = {k: v for k, v in os.environ.items() if not is_function_variable(k)}
        for name, target, kind, port in (
            ("ingest-function", "on_csv_finalized", "cloudevent", self.ports.ingest),
            ("poller-function", "poll_import", "http", self.ports.poller),
        ):
            argv = [framework, "--source", str(REPO_ROOT / "main.py"), "--target", target,
                    "--signature-type", kind,
                    "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            self._spawn(name, argv, {**common, "FUNCTION_TARGET": target}, port, inherited)

    def _start_relay(self) -> None:
        argv = [sys.executable, "-m", "local_cloud.relay", "--port", str(self.ports.relay),
                "--target", self.ingest_url]  # fmt: skip
        self._spawn("eventarc-relay", argv, {}, self.ports.relay)
        create_ingest_push(self.ports.relay, self.settings.push_min_backoff_s)
