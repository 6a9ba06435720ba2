"""``python -m local_cloud.tasks_emulator --host 127.0.0.1 --port N [--tombstone-seconds S]``.

Prints ``READY <host>:<port>`` on stdout once serving; logs go to stderr. Stops cleanly on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys

from local_cloud.processes import serve_until_signalled
from local_cloud.tasks_emulator.core import DEFAULT_TOMBSTONE_SECONDS
from local_cloud.tasks_emulator.service import TasksEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.tasks_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument(
        "--tombstone-seconds",
        type=float,
        default=DEFAULT_TOMBSTONE_SECONDS,
        help="how long the name of a deleted or finished task stays taken (default 3600)",
    )
    parser.add_argument("--dispatch-workers", type=int, default=32)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    emulator = TasksEmulator(
        host=args.host,
        port=args.port,
        tombstone_seconds=args.tombstone_seconds,
        dispatch_workers=args.dispatch_workers,
    )

    def start() -> str:
        emulator.start()
        return emulator.address

    return serve_until_signalled(start, emulator.stop)


if __name__ == "__main__":
    sys.exit(main())
