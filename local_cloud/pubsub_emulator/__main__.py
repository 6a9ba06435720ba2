"""``python -m local_cloud.pubsub_emulator --host 127.0.0.1 --port N [--push-workers W]``.

How the local cloud starts the built-in emulator as a child process: prints
``READY <host>:<port>`` on stdout once serving and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import sys

from local_cloud.grpc_common import listen_parser, serve_emulator
from local_cloud.pubsub_emulator.emulator import PubSubEmulator
from local_cloud.pubsub_emulator.push import PUSH_WORKERS_PER_SUBSCRIPTION


def main(argv: list[str] | None = None) -> int:
    parser = listen_parser(
        "python -m local_cloud.pubsub_emulator",
        "Local in-memory Pub/Sub emulator (gRPC).",
        default_port=8085,
    )
    parser.add_argument(
        "--push-workers",
        type=int,
        default=PUSH_WORKERS_PER_SUBSCRIPTION,
        help="concurrent push requests per push subscription",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return serve_emulator(
        PubSubEmulator(host=args.host, port=args.port, push_workers=args.push_workers)
    )


if __name__ == "__main__":
    sys.exit(main())
