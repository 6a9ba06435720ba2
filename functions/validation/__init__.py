"""Validate and rewrite a CSV of historical events into the exact file Leanplum imports.

Public interface (used by the ingest function and by ``python -m functions validate``)::

    from functions.validation import (
        ValidationOptions, ValidationReport, validate_csv, split_by_user)

Modules, one job each: ``options`` (settings), ``decoding`` (strict UTF-8 text), ``reading``
(records in chunks; plain lines split at C speed, the rest by ``csv.reader``), ``columns``
(header mapping, column_map, drop_columns), ``names`` (naming rules), ``timeparse`` (time
formats), ``rules`` (row rules by chunk), ``sorting`` (bounded grouping by user),
``duplicates`` (exact repeats, dropped where grouping makes them neighbours), ``billing``
(user lookups), ``warnings``, ``report``, ``rejected`` (the rejected-rows CSV), ``core``
(validate_csv), ``split`` and ``records`` (cutting output into parts).

Fast paths, each proved equal to the reference above by tests/unit/test_validation_fast_*
and test_validation_columnar: ``columnar`` (plain files of at least 16 MB on native Polars
columns: ``blocks``, ``times``, ``checking``, ``verdicts``, ``lookups``, ``grouping``,
``ahead``; tried first, it declines anything else with a logged reason), ``fastrules`` and
``fasttime`` (the same rules with C-level scans, time cells by groups),
``capacity`` (whether to use worker processes), ``parallel``, ``scanning``, ``workers`` and
``pool`` (the same code in several processes). ``core.FAST = False`` runs the reference only.
"""

from functions.validation.core import validate_csv
from functions.validation.options import ValidationOptions
from functions.validation.report import ValidationReport
from functions.validation.split import (
    LEANPLUM_MAX_FILE_BYTES,
    PartInfo,
    UserTooLargeError,
    split_by_user,
)

__all__ = [
    "LEANPLUM_MAX_FILE_BYTES",
    "PartInfo",
    "UserTooLargeError",
    "ValidationOptions",
    "ValidationReport",
    "split_by_user",
    "validate_csv",
]
