"""``python -m local_cloud COMMAND``: run the importer locally.

Commands:
  demo              start everything, import samples/events.csv, print the result, stop
  up                start the local cloud in the background (``down`` stops it)
  down              stop the background local cloud
  serve             run the local cloud in the foreground until Ctrl-C
  upload FILE [NAME]  upload a CSV to the running local cloud's bucket (incoming/NAME)
  results [--wait S]  print result messages from the running local cloud
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local_cloud.stack import BUCKET, REPO_ROOT, LocalCloud, Settings

STATE_DIR = REPO_ROOT / ".local-cloud"
PID_FILE = STATE_DIR / "serve.pid"
ENDPOINTS = STATE_DIR / "endpoints.json"


def _say(text: str) -> None:
    print(text, flush=True)


def _upload(path: Path, name: str) -> int:
    from functions import gcs

    blob = gcs.make_storage_client().bucket(BUCKET).blob(name)
    blob.upload_from_filename(str(path), content_type="text/csv")
    return int(blob.generation or 0)


def _read_uri(uri: str) -> str:
    from functions import gcs

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return str(gcs.make_storage_client().bucket(bucket).blob(name).download_as_text())


def _show_outputs(body: dict[str, Any]) -> None:
    """What a person checks next: the file Leanplum read and the validation report."""
    normalized = body["uris"].get("normalized")
    parts = body["uris"].get("parts") or []
    if normalized:
        text = _read_uri(normalized)
        _say(f"The upload, normalised in place ({normalized}); Leanplum read the same bytes")
        _say(f"from the importer's own copy ({', '.join(parts)}):")
        _say("  " + "\n  ".join(text.splitlines()[:12]))
    report_uri = body["uris"].get("report")
    if report_uri:
        report = json.loads(_read_uri(report_uri))
        _say(f"Validation report ({report_uri}):")
        _say(f"  column mapping: {json.dumps(report.get('column_mapping', {}))}")
        for warning in report.get("warnings", []):
            _say(f"  warning: {warning}")


def demo(_: argparse.Namespace) -> int:
    """The README's first command: one sample file through the whole pipeline."""
    from local_cloud.results import for_object, pull_results

    started = time.monotonic()
    _say("Starting the local cloud (GCS, Pub/Sub, Cloud Tasks, Leanplum simulator, functions)...")
    cloud = LocalCloud(Settings(state_dir=STATE_DIR / "demo"))
    with cloud:
        up = time.monotonic()
        _say(f"  ready in {up - started:.1f} s (Pub/Sub emulator: {cloud.pubsub_kind})")
        name = f"incoming/sample-{time.strftime('%Y%m%dT%H%M%S')}.csv"
        sample = REPO_ROOT / "samples" / "events.csv"
        generation = _upload(sample, name)
        uploaded = time.monotonic()
        _say(f"Uploaded {sample.relative_to(REPO_ROOT)} to gs://{BUCKET}/{name}#{generation}")
        _say("Waiting for the result message on " + cloud.results_subscription + " ...")
        try:
            messages = pull_results(
                cloud.results_subscription, until=for_object(name), deadline_s=120
            )
        except TimeoutError as exc:
            _say(f"FAILED: {exc}. Logs: {cloud.log_dir}")
            return 1
        result = next(m for m in messages if m["attributes"]["object"] == name)
        _say("Result message attributes: " + json.dumps(result["attributes"], sort_keys=True))
        _say(json.dumps(result["body"], indent=2, sort_keys=True))
        _show_outputs(result["body"])
        _say(
            f"Upload to result message: {time.monotonic() - uploaded:.1f} s; "
            f"demo total: {time.monotonic() - started:.1f} s. Stopping."
        )
        return 0 if result["body"]["status"] in ("SUCCEEDED", "PARTIAL") else 1


def serve(args: argparse.Namespace) -> int:
    """Run in the foreground until SIGTERM or Ctrl-C; every child stops with us."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cloud = LocalCloud(Settings(state_dir=STATE_DIR, pubsub_kind=args.pubsub))
    with cloud:
        PID_FILE.write_text(str(os.getpid()))
        _say(json.dumps(cloud.describe(), indent=2))
        while not stop.wait(1.0):
            cloud.check_alive()
    PID_FILE.unlink(missing_ok=True)
    ENDPOINTS.unlink(missing_ok=True)
    return 0


def up(args: argparse.Namespace) -> int:
    if PID_FILE.exists():
        _say(f"Already running (pid {PID_FILE.read_text()}); `make down` stops it.")
        return 0
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    ENDPOINTS.unlink(missing_ok=True)
    log = (STATE_DIR / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cloud", "serve", "--pubsub", args.pubsub],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    end = time.monotonic() + 90
    while not (ENDPOINTS.exists() and PID_FILE.exists()):
        if process.poll() is not None or time.monotonic() > end:
            _say(f"The local cloud did not start; see {STATE_DIR / 'serve.log'}")
            process.terminate()
            return 1
        time.sleep(0.2)
    info: dict[str, Any] = json.loads(ENDPOINTS.read_text())
    exports = " ".join(f"{key}={value}" for key, value in info["env"].items())
    _say(f"The local cloud is up (pid {process.pid}). Endpoints: {ENDPOINTS}")
    _say("Drop a file:    .venv/bin/python -m local_cloud upload my-events.csv")
    _say("See results:    .venv/bin/python -m local_cloud results --wait 60")
    _say(f"Use any client: export {exports}")
    _say(f"Logs:           {info['logs']}")
    _say("Stop:           make down")
    return 0


def down(_: argparse.Namespace) -> int:
    if not PID_FILE.exists():
        _say("Not running.")
        return 0
    pid = int(PID_FILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        PID_FILE.unlink(missing_ok=True)
        _say("Was not running any more; cleaned up.")
        return 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    PID_FILE.unlink(missing_ok=True)
    _say("The local cloud is stopped.")
    return 0


def _running_endpoints() -> dict[str, Any]:
    if not ENDPOINTS.exists():
        raise SystemExit("The local cloud is not running: `make up` first.")
    info: dict[str, Any] = json.loads(ENDPOINTS.read_text())
    os.environ.update(info["env"])
    return info


def upload(args: argparse.Namespace) -> int:
    _running_endpoints()
    path = Path(args.file)
    name = "incoming/" + (args.name or path.name)
    generation = _upload(path, name)
    _say(f"Uploaded {path} to gs://{BUCKET}/{name}#{generation}")
    return 0


def results(args: argparse.Namespace) -> int:
    from local_cloud.results import pull_results

    info = _running_endpoints()
    try:
        messages = pull_results(info["results_subscription"], until=bool, deadline_s=args.wait)
    except TimeoutError:
        _say("No result message yet.")
        return 1
    for message in messages:
        _say(json.dumps(message, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo").set_defaults(run=demo)
    for name, run in (("up", up), ("serve", serve)):
        command = commands.add_parser(name)
        command.add_argument(
            "--pubsub",
            default=os.environ.get("PUBSUB_EMULATOR_KIND", "auto"),
            choices=["auto", "official", "builtin"],
        )
        command.set_defaults(run=run)
    commands.add_parser("down").set_defaults(run=down)
    command = commands.add_parser("upload")
    command.add_argument("file")
    command.add_argument("name", nargs="?")
    command.set_defaults(run=upload)
    command = commands.add_parser("results")
    command.add_argument("--wait", type=float, default=30.0)
    command.set_defaults(run=results)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
