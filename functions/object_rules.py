"""Which finalized objects are imports: the rules in one place, each with its reason.

Why: half the files come from exporters, which write temp, marker and partial objects around
the real shards, and every one of them fires a finalize event. An object that is not an import
is ignored with the rule that ignored it (logged once per event), and gets no record, no job and
no result message. The rules, in order:

1. under the importer's reserved prefix (its own objects, in a bucket that shares them);
2. outside ``INCOMING_PREFIX``;
3. empty (marker objects, and gcsfuse's first, zero-byte version of every file);
4. a marker name: ``_SUCCESS``, ``complete``, Spark's ``_started_*``/``_committed_*``;
5. temp objects: Beam's ``.temp-beam-*`` directories, Hadoop's ``_temporary/``, the parallel
   composite upload components of ``gsutil`` (``.../gsutil/tmp/parallel_composite_uploads/``)
   and ``gcloud storage`` (``gcloud/tmp/parallel_composite_uploads/``), ``*.part``;
6. not named ``*.csv`` or ``*.csv.gz`` (any case).
"""

from __future__ import annotations

import re

from functions.config import RESERVED_PREFIX

IMPORT_SUFFIXES = (".csv", ".csv.gz")
MARKER_NAMES = frozenset({"_success", "complete", "_success.csv"})
_MARKER_PREFIXES = ("_started_", "_committed_")
_TEMP_PATTERNS = (
    re.compile(r"(^|/)\.temp-beam-[^/]*/"),
    re.compile(r"(^|/)_temporary/"),
    re.compile(r"(^|/)gsutil/tmp/parallel_composite_uploads/"),
    re.compile(r"(^|/)gcloud/tmp/parallel_composite_uploads/"),
)


def ignore_reason(name: str, size: int | None, incoming_prefix: str) -> str | None:
    """Why the object ``name`` (of ``size`` bytes, if known) is not an import, or ``None``."""
    base = name.rsplit("/", 1)[-1].lower()
    if name.startswith(RESERVED_PREFIX):
        return f"under the importer's reserved prefix {RESERVED_PREFIX!r}"
    if not name.startswith(incoming_prefix):
        return f"outside INCOMING_PREFIX {incoming_prefix!r}"
    if size == 0:
        return "an empty object (a marker, or the first version gcsfuse writes)"
    if base in MARKER_NAMES or base.startswith(_MARKER_PREFIXES):
        return f"a marker object ({base!r})"
    for pattern in _TEMP_PATTERNS:
        if pattern.search(name):
            return f"a temporary object of an exporter or upload tool ({pattern.pattern!r})"
    if base.endswith(".part"):
        return "a partial upload ('*.part')"
    if not base.endswith(IMPORT_SUFFIXES):
        return "not named *.csv or *.csv.gz"
    return None
