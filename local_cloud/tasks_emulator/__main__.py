"""``python -m local_cloud.tasks_emulator --host 127.0.0.1 --port N [--tombstone-seconds S]``.

How the local cloud starts the emulator as a child process: prints ``READY <host>:<port>`` on
stdout once serving; logs go to stderr. Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import sys

from local_cloud.grpc_common import listen_parser, serve_emulator
from local_cloud.tasks_emulator.service import TasksEmulator
from local_cloud.tasks_emulator.state import DEFAULT_TOMBSTONE_SECONDS


def main(argv: list[str] | None = None) -> int:
    parser = listen_parser(
        "python -m local_cloud.tasks_emulator", "Local Cloud Tasks emulator (gRPC).", 8123
    )
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
    return serve_emulator(
        TasksEmulator(
            host=args.host,
            port=args.port,
            tombstone_seconds=args.tombstone_seconds,
            dispatch_workers=args.dispatch_workers,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
