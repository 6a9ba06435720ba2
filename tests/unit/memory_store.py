"""An in-memory object store that honours generations exactly as Cloud Storage does.

For unit tests only (the emulators stay for contract and end-to-end tests). It implements
:class:`functions.objects.ObjectStore` with Cloud Storage's rules: every write makes a new,
larger generation; ``if_generation_match=0`` means "only if absent"; a pinned read of a
replaced generation is 404 (a bucket without versioning, as the local emulator has); a copy is
create-only. On top, a test can:

- inject faults no emulator produces on demand: ``412`` (a precondition failure), ``503`` (the
  store did not answer) and ``lost_answer`` (the write happened, then the client's retry met
  it and got 412, which is what a lost answer looks like to the caller);
- run an action just before an operation (``on``): a newer upload at the moment the importer
  downloads, rewrites or checks the live generation, or a crash (:class:`Crash`) after a step.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from functions.access import BucketRole, allows
from functions.config import FunctionName
from functions.objects import (
    AccessDenied,
    ObjectInfo,
    ObjectNotFound,
    PreconditionFailed,
    StorageUnavailable,
)

Op = Literal["stat", "read", "download", "write", "copy", "delete", "list"]
FaultKind = Literal["412", "503", "lost_answer"]


class Crash(BaseException):
    """The instance dies here: not an ``Exception``, so no ``except Exception`` sees it."""


@dataclass
class _Object:
    data: bytes
    info: ObjectInfo


@dataclass
class _Hook:
    op: Op
    pattern: str
    times: int
    fault: FaultKind | None = None
    action: Callable[[], object] | None = None


@dataclass
class MemoryStore:
    """:class:`~functions.objects.ObjectStore` in a dict, with faults and hooks for races."""

    live: dict[tuple[str, str], _Object] = field(default_factory=dict)
    calls: list[tuple[Op, str]] = field(default_factory=list)
    #: Die (:class:`Crash`) at this mutating call (write, copy, delete; 1-based), before it
    #: lands or, with ``crash_after_landing``, after it landed but before it answered.
    crash_at_mutation: int | None = None
    crash_after_landing: bool = False
    mutations: int = 0
    _hooks: list[_Hook] = field(default_factory=list)
    _generations: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1_700_000_000_000_001)
    )

    # -- test controls ------------------------------------------------------------------------
    def fail(self, op: Op, pattern: str, kind: FaultKind, times: int = 1) -> None:
        """The next ``times`` calls of ``op`` on a name matching ``pattern`` fail with ``kind``."""
        self._hooks.append(_Hook(op, pattern, times, fault=kind))

    def on(self, op: Op, pattern: str, action: Callable[[], object], times: int = 1) -> None:
        """Run ``action`` just before the next ``times`` calls of ``op`` on matching names."""
        self._hooks.append(_Hook(op, pattern, times, action=action))

    def put(
        self, bucket: str, name: str, data: bytes, metadata: dict[str, str] | None = None
    ) -> int:
        """An upload by a person or an exporter (no faults, no hooks); returns its generation."""
        return self._store(bucket, name, data, metadata or {}).generation

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(n for b, n in self.live if b == bucket and n.startswith(prefix))

    def data(self, bucket: str, name: str) -> bytes:
        return self.live[(bucket, name)].data

    # -- ObjectStore --------------------------------------------------------------------------
    def stat(self, bucket: str, name: str, generation: int | None = None) -> ObjectInfo | None:
        self._enter("stat", name)
        found = self._get(bucket, name, generation)
        return found.info if found else None

    def read(self, bucket: str, name: str) -> tuple[bytes, ObjectInfo] | None:
        self._enter("read", name)
        found = self._get(bucket, name, None)
        return (found.data, found.info) if found else None

    def download(
        self, bucket: str, name: str, generation: int | None, target: BinaryIO
    ) -> ObjectInfo:
        self._enter("download", name)
        found = self._get(bucket, name, generation)
        if found is None:
            raise ObjectNotFound(f"gs://{bucket}/{name}#{generation}: not found")
        target.write(found.data)
        target.flush()
        return found.info

    def write(
        self,
        bucket: str,
        name: str,
        source: bytes | BinaryIO,
        *,
        if_generation_match: int | None,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        fault = self._enter("write", name)
        data = source if isinstance(source, bytes) else _read_all(source)
        self._check_precondition(bucket, name, if_generation_match)
        info = self._store(bucket, name, data, metadata or {})
        self._maybe_crash(landed=True)
        if fault == "lost_answer":
            raise PreconditionFailed(f"gs://{bucket}/{name}: the retry met its own write (412)")
        return info

    def copy(
        self, bucket: str, name: str, generation: int, destination_bucket: str, destination: str
    ) -> ObjectInfo:
        fault = self._enter("copy", destination)
        source = self._get(bucket, name, generation)
        if source is None:
            raise ObjectNotFound(f"gs://{bucket}/{name}#{generation}: not found")
        self._check_precondition(destination_bucket, destination, 0)
        info = self._store(destination_bucket, destination, source.data, dict(source.info.metadata))
        self._maybe_crash(landed=True)
        if fault == "lost_answer":
            raise PreconditionFailed(f"gs://{bucket}/{destination}: the retry met its own copy")
        return info

    def delete(self, bucket: str, name: str, if_generation_match: int | None = None) -> bool:
        self._enter("delete", name)
        if if_generation_match is not None and (bucket, name) in self.live:
            self._check_precondition(bucket, name, if_generation_match)
        return self.live.pop((bucket, name), None) is not None

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        self._enter("list", prefix)
        return [self.live[(bucket, n)].info for n in self.names(bucket, prefix)]

    # -- Cloud Storage's rules ------------------------------------------------------------------
    def _get(self, bucket: str, name: str, generation: int | None) -> _Object | None:
        found = self.live.get((bucket, name))
        if found is None or (generation is not None and found.info.generation != generation):
            return None
        return found

    def _check_precondition(self, bucket: str, name: str, expected: int | None) -> None:
        if expected is None:
            return
        found = self.live.get((bucket, name))
        current = found.info.generation if found else 0
        if current != expected:
            raise PreconditionFailed(f"gs://{bucket}/{name}: at {current}, not {expected} (412)")

    def _store(self, bucket: str, name: str, data: bytes, metadata: dict[str, str]) -> ObjectInfo:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        info = ObjectInfo(bucket, name, next(self._generations), len(data), md5, dict(metadata))
        self.live[(bucket, name)] = _Object(data, info)
        return info

    def _maybe_crash(self, *, landed: bool) -> None:
        if self.crash_at_mutation == self.mutations and landed == self.crash_after_landing:
            self.crash_at_mutation = None
            raise Crash(f"crashed at mutation {self.mutations}")

    def _enter(self, op: Op, name: str) -> FaultKind | None:
        """Log the call, run the hooks that match, raise or return an injected fault."""
        self.calls.append((op, name))
        if op in ("write", "copy", "delete"):
            self.mutations += 1
            self._maybe_crash(landed=False)
        for hook in list(self._hooks):
            if hook.op != op or not fnmatch.fnmatchcase(name, hook.pattern) or hook.times <= 0:
                continue
            hook.times -= 1
            if hook.action is not None:
                hook.action()
            if hook.fault == "412":
                raise PreconditionFailed(f"{name}: injected 412")
            if hook.fault == "503":
                raise StorageUnavailable(f"{name}: injected 503")
            if hook.fault == "lost_answer":
                return "lost_answer"
        return None


def _read_all(source: BinaryIO) -> bytes:
    source.seek(0)
    return source.read()


@dataclass
class GuardedStore:
    """One function's view of the store: every call outside its rows of
    :data:`functions.access.ACCESS` is refused as Cloud Storage refuses it (403), so a read or
    write the grants do not cover fails a unit test instead of a deployment."""

    store: MemoryStore
    function: FunctionName
    roles: dict[str, BucketRole]
    incoming_prefix: str = "incoming/"
    denied: list[tuple[str, str, str]] = field(default_factory=list)

    def _check(self, op: str, bucket: str, name: str, *, write: bool) -> None:
        role = self.roles.get(bucket)
        if role is None or not allows(
            self.function, role, name, write=write, incoming_prefix=self.incoming_prefix
        ):
            self.denied.append((op, bucket, name))
            raise AccessDenied(f"{self.function} may not {op} gs://{bucket}/{name} (403)")

    def stat(self, bucket: str, name: str, generation: int | None = None) -> ObjectInfo | None:
        self._check("stat", bucket, name, write=False)
        return self.store.stat(bucket, name, generation)

    def read(self, bucket: str, name: str) -> tuple[bytes, ObjectInfo] | None:
        self._check("read", bucket, name, write=False)
        return self.store.read(bucket, name)

    def download(
        self, bucket: str, name: str, generation: int | None, target: BinaryIO
    ) -> ObjectInfo:
        self._check("download", bucket, name, write=False)
        return self.store.download(bucket, name, generation, target)

    def write(
        self,
        bucket: str,
        name: str,
        source: bytes | BinaryIO,
        *,
        if_generation_match: int | None,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        self._check("write", bucket, name, write=True)
        return self.store.write(bucket, name, source, if_generation_match=if_generation_match,
                                content_type=content_type, metadata=metadata)  # fmt: skip

    def copy(
        self, bucket: str, name: str, generation: int, destination_bucket: str, destination: str
    ) -> ObjectInfo:
        self._check("copy from", bucket, name, write=False)
        self._check("copy to", destination_bucket, destination, write=True)
        return self.store.copy(bucket, name, generation, destination_bucket, destination)

    def delete(self, bucket: str, name: str, if_generation_match: int | None = None) -> bool:
        self._check("delete", bucket, name, write=True)
        return self.store.delete(bucket, name, if_generation_match)

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        self._check("list", bucket, prefix, write=False)
        return self.store.list(bucket, prefix)
