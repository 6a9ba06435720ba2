"""The finalize event as the importer sees it (:mod:`functions.object_rules` says which
objects are imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FinalizedObject:
    """The fields of a ``google.cloud.storage.object.v1.finalized`` event the importer uses."""

    bucket: str
    name: str
    generation: int
    md5_hash: str | None
    metadata: dict[str, str]
    time_created: str | None
    size: int | None = None

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> FinalizedObject:
        return cls(
            bucket=str(data["bucket"]),
            name=str(data["name"]),
            generation=int(data["generation"]),
            md5_hash=data.get("md5Hash"),
            metadata=dict(data.get("metadata") or {}),
            time_created=data.get("timeCreated"),
            size=int(data["size"]) if str(data.get("size", "")).isdigit() else None,
        )

    @property
    def fields(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "object": self.name, "generation": str(self.generation)}
