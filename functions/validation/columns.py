"""Map an input header onto Leanplum's ``track`` arguments and ``params.<name>`` columns.

Order of precedence for each argument: a column the caller maps to it (``column_map``), a
column of exactly its name, then the first column (in header order) spelled like one of its
aliases. Columns in ``drop_columns`` take no part at all. A first line naming no required
argument, no alias of one and no mapped column is not a header (an export without one,
e.g. BigQuery ``EXPORT DATA`` without ``header=true``): the file is refused, quoting it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from functions.validation.names import name_problem

REQUIRED = ("userId", "event", "time")
#: Output order of the track arguments; parameters follow in input order. A fixed order keeps
#: the output identical when it is validated again.
TRACK_ARGUMENTS = ("userId", "event", "time", "value", "currencyCode", "deviceId", "info")
PARAMS_PREFIX = "params."

#: Lower-cased spellings accepted for each argument when the exact name is absent.
ALIASES: dict[str, tuple[str, ...]] = {
    "userId": ("userid", "user_id", "user id", "user"),
    "event": ("event", "event_name", "eventname", "event name"),
    "time": ("time", "timestamp", "event_time", "eventtime", "event time", "ts"),
    "value": ("value",),
    "currencyCode": ("currencycode", "currency_code", "currency code", "currency"),
    "deviceId": ("deviceid", "device_id", "device id"),
    "info": ("info",),
}
#: Spellings tried only when no spelling of ALIASES matches, so that a file holding both a
#: known alias and one of these keeps today's choice. GA4 exports name the time this way.
LATE_ALIASES: dict[str, tuple[str, ...]] = {"time": ("event_timestamp",)}
#: How much of a first line that is not a header the refusal quotes.
QUOTED_LINE_CHARS = 200


class HeaderError(ValueError):
    """The header makes the whole file unusable (missing or duplicate columns)."""


@dataclass
class ColumnPlan:
    """Where each output column comes from, decided once from the header."""

    names: list[str]
    arguments: dict[str, int] = field(default_factory=dict)
    params: list[tuple[int, str]] = field(default_factory=list)
    bad_params: list[tuple[int, str, str]] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    #: Columns of ``drop_columns`` that this file does not have (a warning, not an error:
    #: one setting serves every file of a bucket).
    drops_not_found: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        """Number of fields every data row must have."""
        return len(self.names)

    @property
    def output_header(self) -> list[str]:
        """Header of the normalised file."""
        present = [name for name in TRACK_ARGUMENTS if name in self.arguments]
        return present + [name for _, name in self.params]

    def source_indexes(self) -> list[int]:
        """Input index of each output column, in output order."""
        present = [self.arguments[n] for n in TRACK_ARGUMENTS if n in self.arguments]
        return present + [index for index, _ in self.params]


def plan_columns(
    header: list[str],
    column_map: dict[str, str] | None = None,
    drop_columns: frozenset[str] = frozenset(),
) -> ColumnPlan:
    """Decide the output columns; raise HeaderError naming what is wrong and what was found."""
    column_map = column_map or {}
    drop_columns = frozenset(name.strip() for name in drop_columns)
    names = [name.strip() for name in header]
    dropped = {index for index, name in enumerate(names) if name in drop_columns}
    counts = Counter(name for index, name in enumerate(names) if index not in dropped)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise HeaderError(f"duplicate column name(s): {', '.join(map(repr, duplicates))}")
    plan = ColumnPlan(names=names)
    plan.drops_not_found = sorted(drop_columns - set(names))
    for argument, source in column_map.items():
        if source.strip() in names:
            plan.arguments[argument] = names.index(source.strip())
    taken = set(plan.arguments.values()) | dropped
    for argument in TRACK_ARGUMENTS:
        if argument not in plan.arguments and argument in names:
            index = names.index(argument)
            if index not in taken:
                plan.arguments[argument] = index
                taken.add(index)
    for aliases in (ALIASES, LATE_ALIASES):
        for argument, spellings in aliases.items():
            if argument in plan.arguments:
                continue
            for index, name in enumerate(names):
                if name.lower() in spellings and index not in taken:
                    plan.arguments[argument] = index
                    taken.add(index)
                    break
    _check_required(header, plan, column_map)
    for index in sorted(dropped):
        plan.mapping[header[index]] = "(dropped: drop_columns)"
    used = set(plan.arguments.values())
    for argument, index in plan.arguments.items():
        plan.mapping[header[index]] = argument
    outputs: dict[str, str] = {}
    for index, name in enumerate(names):
        if index in used or index in dropped:
            continue
        param = name[len(PARAMS_PREFIX) :] if name.startswith(PARAMS_PREFIX) else name
        output = PARAMS_PREFIX + param
        problem = name_problem(param)
        if problem is not None:
            plan.bad_params.append((index, header[index], "parameter " + problem))
            plan.mapping[header[index]] = f"(dropped: parameter {problem})"
            continue
        if output in outputs:
            raise HeaderError(
                f"columns {outputs[output]!r} and {header[index]!r} both become {output!r}"
            )
        outputs[output] = header[index]
        plan.params.append((index, output))
        plan.mapping[header[index]] = output
    return plan


def _check_required(header: list[str], plan: ColumnPlan, column_map: dict[str, str]) -> None:
    """Refuse a first line that is not a header, a mapped column that is absent, a gap."""
    found = ", ".join(repr(name) for name in header) or "none"
    sources = {source.strip() for source in column_map.values()}
    recognised = (
        any(name in REQUIRED for name in plan.arguments)
        or not sources.isdisjoint(plan.names)
        or any(name.startswith(PARAMS_PREFIX) for name in plan.names)
    )
    if not recognised:
        line = ",".join(header)
        if len(line) > QUOTED_LINE_CHARS:
            line = line[:QUOTED_LINE_CHARS] + "..."
        raise HeaderError(
            f"the first line is not a header: it names no userId, event or time column (nor"
            f" a known alias or a mapped column): {line!r}. The export needs a header row"
            " (BigQuery EXPORT DATA: header=true); if this is a header, name the columns with"
            " COLUMN_MAP (--map), e.g. userId=user_pseudo_id"
        )
    absent = [
        (argument, source)
        for argument, source in column_map.items()
        if argument not in plan.arguments or plan.names[plan.arguments[argument]] != source.strip()
    ]
    if absent:
        described = ", ".join(f"{argument}={source}" for argument, source in absent)
        raise HeaderError(
            f"COLUMN_MAP names column(s) the file does not have: {described}; columns found:"
            f" {found}"
        )
    missing = [name for name in REQUIRED if name not in plan.arguments]
    if missing:
        raise HeaderError(
            f"missing required column(s) {', '.join(missing)}; columns found: {found}"
        )
