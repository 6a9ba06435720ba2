"""Validate and rewrite a CSV of historical events into the exact file Leanplum imports.

Public interface used by the ingest function and the command line::

    from functions.validation import (
        ValidationOptions, ValidationReport, validate_csv, split_by_user)
"""

from functions.validation.core import validate_csv
from functions.validation.options import ValidationOptions
from functions.validation.report import ValidationReport
from functions.validation.split import LEANPLUM_MAX_FILE_BYTES, PartInfo, split_by_user

__all__ = [
    "LEANPLUM_MAX_FILE_BYTES",
    "PartInfo",
    "ValidationOptions",
    "ValidationReport",
    "split_by_user",
    "validate_csv",
]
