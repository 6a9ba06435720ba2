"""How ``python -m local_cloud`` turns the caller's environment into a local cloud, and says so.

Why apart from :mod:`local_cloud.__main__`: ``demo``, ``up`` and ``serve`` must build the same
:class:`~local_cloud.stack.Settings` from the same variables (``up`` checks them before it
starts ``serve`` in the background, so a wrong environment fails at once, in the foreground)
and print the same lines about which Leanplum the functions talk to. What is taken from the
environment is decided in :mod:`local_cloud.caller_env`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from local_cloud.stack import Settings


def settings_from_environment(state_dir: Path, pubsub_kind: str = "auto") -> Settings:
    """The local cloud the caller's environment asks for; exits naming what is wrong (never a
    key's value) before anything is started."""
    from local_cloud.caller_env import CallerEnvError, function_settings, real_leanplum

    try:
        real = real_leanplum(os.environ)
        overrides = function_settings(os.environ)
    except CallerEnvError as exc:
        raise SystemExit(f"Cannot start the local cloud: {exc}") from None
    settings = Settings(
        state_dir=state_dir, pubsub_kind=pubsub_kind, real_leanplum=real, function_env=overrides
    )
    if real is not None:
        # A real job runs for minutes: poll it every 5 to 60 s rather than every second.
        settings.queue_min_backoff_s, settings.queue_max_backoff_s = 5.0, 60.0
        overrides.setdefault("POLL_FIRST_DELAY_SECONDS", "5")
    return settings


def leanplum_lines(info: dict[str, Any]) -> list[str]:
    """Which Leanplum the functions talk to, and which settings came from the environment."""
    from local_cloud.caller_env import function_settings, ignored_variables

    leanplum = info["leanplum"]
    from_env = sorted(function_settings(os.environ))  # names only: some are keys
    if leanplum["mode"] == "real":
        bucket = os.environ.get("LEANPLUM_BUCKET", "").strip() or "none"
        reads = info["state_bucket"] if bucket == "none" else bucket
        lines = [
            f"Leanplum: the REAL Leanplum at {leanplum['api_url']}, app id {leanplum['app_id']}"
            " (key from LEANPLUM_DEV_KEY, not shown).",
            f"  Its jobs read each file from gs://{reads}/ in real Cloud Storage: rows become"
            " events in that app only if Leanplum can read them there (the local buckets exist"
            " only in the emulator).",
        ]
    else:
        others = ", ".join(f"{app_id} as {name!r}" for name, app_id in leanplum["apps"].items())
        lines = [
            f"Leanplum: the simulator at {leanplum['api_url']}, app id {leanplum['app_id']}"
            f" (also {others} for LEANPLUM_APP_ROUTES)."
        ]
    if from_env:
        lines.append(f"Settings from your environment: {', '.join(from_env)}")
    ignored = ignored_variables(os.environ)
    if ignored:
        lines.append(
            f"Ignored from your environment: {', '.join(ignored)} (the local cloud sets its own;"
            " LEANPLUM_API_URL selects a real Leanplum)"
        )
    return lines
