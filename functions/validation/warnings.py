"""Warnings for a person to read before importing: what Leanplum will do with this file."""

from __future__ import annotations

from typing import Protocol

from functions.validation.columns import ColumnPlan
from functions.validation.report import MAX_LISTED_EVENT_NAMES, ValidationReport
from functions.validation.rules import MAX_COLLECTED_EVENT_NAMES
from functions.validation.timelimits import ANALYTICS_DAYS, MOVED_EVENT_DAYS, OLD_EVENT_DAYS


class CheckerCounts(Protocol):
    """What a checker counted that the warnings need (``rules.ChunkChecker`` and the
    columnar path's ``BlockChecker`` alike)."""

    rows_blank: int
    rows_kept_old: int
    event_names: set[str]
    event_names_capped: bool


MAX_EVENT_NAMES_PER_APP = 500
MAX_PARAMETER_NAMES_PER_APP = 200


def add_warnings(
    report: ValidationReport, checker: CheckerCounts, plan: ColumnPlan, had_bom: bool
) -> None:
    """Fill ``report.warnings`` and the event-name summary."""
    names = sorted(checker.event_names)
    report.event_names_total = len(names)
    report.event_names = names[:MAX_LISTED_EVENT_NAMES]
    report.parameter_names_total = len(plan.params)
    warnings = report.warnings
    if names:
        listed = ", ".join(repr(name) for name in report.event_names)
        more = len(names) - len(report.event_names)
        suffix = f" and {more} more" if more > 0 else ""
        capped = ""
        if checker.event_names_capped:
            capped = (
                f" (more than {MAX_COLLECTED_EVENT_NAMES} distinct names; the list is incomplete)"
            )
        warnings.append(
            "Imported events count as organic: campaigns triggered by these events will fire:"
            f" {listed}{suffix}{capped}"
        )
    if len(names) > MAX_EVENT_NAMES_PER_APP:
        warnings.append(
            f"{len(names)} distinct event names; Leanplum allows at most"
            f" {MAX_EVENT_NAMES_PER_APP} per app"
        )
    if len(plan.params) > MAX_PARAMETER_NAMES_PER_APP:
        warnings.append(
            f"{len(plan.params)} distinct parameter names; Leanplum allows at most"
            f" {MAX_PARAMETER_NAMES_PER_APP} per app"
        )
    for _, name, reason in plan.bad_params:
        warnings.append(
            f"column {name!r} is not a valid parameter name ({reason}): it is left out,"
            " and rows with a value in it are rejected"
        )
    if report.rows_time_clamped:
        warnings.append(
            f"{report.rows_time_clamped} events older than {OLD_EVENT_DAYS} days were moved to"
            f" {MOVED_EVENT_DAYS} days before the import time"
        )
    if checker.rows_kept_old:
        warnings.append(
            f"{checker.rows_kept_old} events are older than {OLD_EVENT_DAYS} days and were kept"
            " (old_event_policy=keep): Leanplum will record them at the import time"
        )
    if report.rows_hidden_from_analytics:
        warnings.append(
            f"{report.rows_hidden_from_analytics} events are older than {ANALYTICS_DAYS} days:"
            " they reach user profiles and audiences but not the Analytics page"
        )
    if report.rows_duplicate_dropped:
        warnings.append(
            f"{report.rows_duplicate_dropped} rows repeated an earlier row exactly (same user,"
            " event, time and parameters) and were dropped (duplicate_rows=drop)"
        )
    if plan.drops_not_found:
        warnings.append(
            "drop_columns names column(s) this file does not have: "
            + ", ".join(map(repr, plan.drops_not_found))
        )
    if checker.rows_blank:
        warnings.append(f"{checker.rows_blank} blank rows were skipped")
    if had_bom:
        warnings.append("the input started with a UTF-8 byte order mark; the output has none")
