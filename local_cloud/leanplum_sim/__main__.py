"""``python -m local_cloud.leanplum_sim``: serve until SIGTERM or SIGINT.

Keys may come from flags or, to keep them out of process listings, from the environment
(``LEANPLUM_SIM_APP_ID``, ``LEANPLUM_SIM_DEV_KEY``, ``LEANPLUM_SIM_PROD_KEY``); a flag wins.
Extra apps (development key only): ``--extra-app APP_ID=DEV_KEY`` (repeatable) and/or
``LEANPLUM_SIM_EXTRA_APPS=APP_ID=DEV_KEY,APP_ID2=DEV_KEY2``; for one app id a flag wins.
"""

from __future__ import annotations

import argparse
import os
import sys

from local_cloud.leanplum_sim._config import (
    MAX_FILE_BYTES,
    RESULTS_LINES_PER_FILE,
    AppConfigError,
    AppIdentity,
    Knobs,
    parse_extra_apps,
)
from local_cloud.leanplum_sim._server import LeanplumSimulator
from local_cloud.processes import serve_until_signalled

EXTRA_APPS_ENV = "LEANPLUM_SIM_EXTRA_APPS"
#: Knobs whose flag is singular because it is repeated (``--warn-event A --warn-event B``).
_FLAG_OF_KNOB = {"warn_events": "warn_event", "readable_buckets": "readable_bucket"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local_cloud.leanplum_sim", description=__doc__)
    env = os.environ.get
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--app-id", default=env("LEANPLUM_SIM_APP_ID"))
    p.add_argument("--dev-key", default=env("LEANPLUM_SIM_DEV_KEY"))
    p.add_argument("--prod-key", default=env("LEANPLUM_SIM_PROD_KEY"))
    p.add_argument(
        "--extra-app",
        action="append",
        default=[],
        metavar="APP_ID=DEV_KEY",
        help=f"another app (development key only); repeatable; also ${EXTRA_APPS_ENV}",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the fault randomness")
    p.add_argument("--public-url", default=None, help="base of results-file URLs")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    k = p.add_argument_group("job timing and fault knobs (also POST /_sim/config)")
    k.add_argument("--pending-seconds", type=float, default=0.5)
    k.add_argument("--running-seconds", type=float, default=1.0)
    k.add_argument("--error-5xx-rate", type=float, default=0.0, help="share of 503 answers")
    k.add_argument("--error-429-rate", type=float, default=0.0, help="share of 429 answers")
    k.add_argument("--latency-ms", type=int, default=0, help="added to every /api request")
    k.add_argument("--fail-job-rate", type=float, default=0.0, help="share of jobs that FAIL")
    k.add_argument("--fail-jobs", type=int, default=0, help="the next N jobs FAIL")
    k.add_argument("--hang-job-rate", type=float, default=0.0, help="share of jobs never done")
    k.add_argument("--hang-jobs", type=int, default=0, help="the next N jobs never finish")
    k.add_argument(
        "--warn-event", action="append", default=[], help="event name answered with a warning"
    )
    k.add_argument("--results-5xx-rate", type=float, default=0.0)
    k.add_argument(
        "--drop-multi-replies", type=int, default=0, help="next N multi calls get no answer"
    )
    k.add_argument("--results-lines-per-file", type=int, default=RESULTS_LINES_PER_FILE)
    k.add_argument("--max-file-bytes", type=int, default=MAX_FILE_BYTES)
    k.add_argument(
        "--readable-bucket",
        action="append",
        default=[],
        metavar="NAME",
        help="a bucket Leanplum can read (repeatable); none given: every bucket",
    )
    return p


def _extra_apps(flags: list[str]) -> dict[str, str]:
    """Extra apps from the environment, then the flags (a flag wins for the same app id)."""
    from_env = [e for e in os.environ.get(EXTRA_APPS_ENV, "").split(",") if e.strip()]
    return {**parse_extra_apps(from_env, EXTRA_APPS_ENV), **parse_extra_apps(flags, "--extra-app")}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    missing = [n for n in ("app_id", "dev_key", "prod_key") if not getattr(args, n)]
    if missing:
        parser.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))
    knob_names = [f for f in Knobs.__dataclass_fields__]
    try:
        knobs = Knobs().patched({n: getattr(args, _FLAG_OF_KNOB.get(n, n)) for n in knob_names})
    except ValueError as exc:
        parser.error(str(exc))
    try:
        extra_apps = _extra_apps(args.extra_app)
        if args.app_id in extra_apps:
            raise AppConfigError(f"extra app {args.app_id!r} is the main app")
    except AppConfigError as exc:  # the message never holds a key
        parser.error(str(exc))
    identity = AppIdentity(app_id=args.app_id, dev_key=args.dev_key, prod_key=args.prod_key)
    sim = LeanplumSimulator(
        identity,
        knobs,
        extra_apps=extra_apps,
        host=args.host,
        port=args.port,
        seed=args.seed,
        quiet=args.quiet,
        public_url=args.public_url,
    )

    def start() -> str:
        sim.start()
        return sim.api_url

    return serve_until_signalled(start, sim.stop)


if __name__ == "__main__":
    sys.exit(main())
