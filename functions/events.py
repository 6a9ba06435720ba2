"""The finalize event as the importer sees it, and which objects are meant for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.config import RESERVED_PREFIX


@dataclass(frozen=True)
class FinalizedObject:
    """The fields of a ``google.cloud.storage.object.v1.finalized`` event the importer uses."""

    bucket: str
    name: str
    generation: int
    md5_hash: str | None
    metadata: dict[str, str]
    time_created: str | None

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> FinalizedObject:
        return cls(
            bucket=str(data["bucket"]),
            name=str(data["name"]),
            generation=int(data["generation"]),
            md5_hash=data.get("md5Hash"),
            metadata=dict(data.get("metadata") or {}),
            time_created=data.get("timeCreated"),
        )

    @property
    def fields(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "object": self.name, "generation": str(self.generation)}


def is_importable(name: str, incoming_prefix: str) -> bool:
    """Whether an object is meant for the importer; the reserved prefix never is."""
    return (
        not name.startswith(RESERVED_PREFIX)
        and name.startswith(incoming_prefix)
        and name.lower().endswith(".csv")
    )
