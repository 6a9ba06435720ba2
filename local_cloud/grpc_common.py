"""What the local gRPC emulators (Pub/Sub and Cloud Tasks) have in common.

Both serve Google APIs without generated stubs: servicer methods marked with :func:`rpc` take
a proto-plus request and become the service's methods, errors are raised as :class:`RpcError`
and answered with their gRPC status, list RPCs page with offset tokens, times cross the wire
as protobuf ``Duration``/``Timestamp``, and each runs as a child process of the local cloud
that prints ``READY host:port`` and stops on SIGTERM. Keeping those rules here means the two
emulators answer alike (same codes, same paging) and a fix reaches both.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import duration_pb2

from local_cloud.processes import serve_until_signalled

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
_RPC_ATTRIBUTE = "_grpc_rpc"

DEFAULT_PAGE_SIZE = 1000


# --------------------------------------------------------------------------- errors


class RpcError(Exception):
    """An error to answer with a gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_argument(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.ALREADY_EXISTS, message)


# --------------------------------------------------------------------------- handlers


def _serialize_empty(_: object) -> bytes:
    return b""


@dataclass(frozen=True)
class _Rpc:
    request_type: Any
    response_type: Any | None
    raw: bool
    streaming: bool


def rpc(request_type: Any, response_type: Any | None = None) -> Callable[[_F], _F]:
    """Mark a servicer method ``fn(request)`` as the unary RPC named after it (``get_topic``
    serves ``GetTopic``), with proto-plus (de)serialisation; ``response_type`` ``None``: the
    RPC answers ``google.protobuf.Empty``. An :class:`RpcError` it raises is answered with its
    status; any other exception is logged and answered INTERNAL."""
    return _mark(_Rpc(request_type, response_type, raw=False, streaming=False))


def raw_rpc(
    request_type: Any, response_type: Any, *, streaming: bool = False
) -> Callable[[_F], _F]:
    """Mark a servicer method ``fn(request, context)`` (``streaming``: a bidirectional stream,
    ``fn(request_iterator, context)``) that answers errors itself through ``context``."""
    return _mark(_Rpc(request_type, response_type, raw=True, streaming=streaming))


def _mark(spec: _Rpc) -> Callable[[_F], _F]:
    def mark(fn: _F) -> _F:
        setattr(fn, _RPC_ATTRIBUTE, spec)
        return fn

    return mark


def service_handler(service: str, servicer: object, log: logging.Logger) -> grpc.GenericRpcHandler:
    """The handler of gRPC service ``service`` serving every method of ``servicer`` marked
    with :func:`rpc` or :func:`raw_rpc`; other methods of the service answer UNIMPLEMENTED."""
    methods: dict[str, grpc.RpcMethodHandler] = {}
    for attribute in dir(type(servicer)):
        spec = getattr(getattr(type(servicer), attribute), _RPC_ATTRIBUTE, None)
        if not isinstance(spec, _Rpc):
            continue
        name = "".join(part.capitalize() for part in attribute.split("_"))
        methods[name] = _method_handler(getattr(servicer, attribute), spec, log)
    return grpc.method_handlers_generic_handler(service, methods)


def _method_handler(fn: Callable[..., Any], spec: _Rpc, log: logging.Logger) -> Any:
    serializer = _serialize_empty if spec.response_type is None else spec.response_type.serialize
    if spec.streaming:
        return grpc.stream_stream_rpc_method_handler(
            fn,
            request_deserializer=spec.request_type.deserialize,
            response_serializer=serializer,
        )

    def answered(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request)
        except RpcError as exc:
            context.abort(exc.code, exc.message)
        except Exception:
            log.exception("internal error in %s", getattr(fn, "__name__", fn))
            context.abort(grpc.StatusCode.INTERNAL, "internal error in the emulator")

    return grpc.unary_unary_rpc_method_handler(
        fn if spec.raw else answered,
        request_deserializer=spec.request_type.deserialize,
        response_serializer=serializer,
    )


def start_server(
    host: str,
    port: int,
    handlers: Sequence[grpc.GenericRpcHandler],
    *,
    max_workers: int,
    thread_name_prefix: str,
    options: Sequence[tuple[str, Any]] = (),
) -> tuple[grpc.Server, int]:
    """Serve ``handlers`` over insecure gRPC on ``host:port`` (0: a free port); returns the
    started server and the bound port. ``OSError`` when the address cannot be bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix),
        options=list(options),
    )
    server.add_generic_rpc_handlers(tuple(handlers))
    bound = int(server.add_insecure_port(f"{host}:{port}"))
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


# --------------------------------------------------------------------------- paging


def paginate(
    items: list[_T], page_size: int, page_token: str, *, negative_size_is_default: bool = False
) -> tuple[list[_T], str]:
    """One page of ``items`` and the token of the next (``""`` after the last page).

    Tokens are offsets. A page size of 0 means :data:`DEFAULT_PAGE_SIZE`; a negative one is
    INVALID_ARGUMENT unless ``negative_size_is_default``.
    """
    try:
        start = int(page_token) if page_token else 0
    except ValueError as exc:
        raise invalid_argument(f"invalid page_token {page_token!r}") from exc
    if page_size < 0 and not negative_size_is_default:
        raise invalid_argument("page_size must not be negative")
    size = page_size if page_size > 0 else DEFAULT_PAGE_SIZE
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


# --------------------------------------------------------------------------- protobuf times


def seconds(value: object) -> float:
    """Seconds of a proto-plus Duration field (exposed as ``timedelta``) or a raw Duration;
    0 for an unset one."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, duration_pb2.Duration):
        return float(value.seconds + value.nanos / 1e9)
    return 0.0


def to_datetime(epoch: float) -> datetime:
    """A Timestamp field's value for ``epoch`` seconds."""
    return datetime.fromtimestamp(epoch, tz=UTC)


def to_epoch(value: datetime) -> float:
    """Epoch seconds of a Timestamp field's value (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def rfc3339_millis(value: datetime) -> str:
    """``2026-11-29T03:15:29.123Z``: a Timestamp as Google's JSON APIs print it."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- entry points


class Emulator(Protocol):
    """What an emulator offers to run as a child process of the local cloud."""

    @property
    def address(self) -> str: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


def listen_parser(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    """An argument parser with the ``--host`` and ``--port`` every emulator takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")
    return parser


def serve_emulator(emulator: Emulator) -> int:
    """Start ``emulator``, print ``READY host:port``, serve until SIGTERM/SIGINT, then stop."""

    def start() -> str:
        emulator.start()
        return emulator.address

    return serve_until_signalled(start, emulator.stop)
