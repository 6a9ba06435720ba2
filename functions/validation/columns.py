"""Map an input header onto Leanplum's ``track`` arguments and ``params.<name>`` columns."""

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


def plan_columns(header: list[str]) -> ColumnPlan:
    """Decide the output columns; raise HeaderError naming what is wrong and what was found."""
    names = [name.strip() for name in header]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise HeaderError(f"duplicate column name(s): {', '.join(map(repr, duplicates))}")
    plan = ColumnPlan(names=names)
    for argument in TRACK_ARGUMENTS:
        if argument in names:
            plan.arguments[argument] = names.index(argument)
    for argument, spellings in ALIASES.items():
        if argument in plan.arguments:
            continue
        for index, name in enumerate(names):
            if name.lower() in spellings and index not in plan.arguments.values():
                plan.arguments[argument] = index
                break
    missing = [name for name in REQUIRED if name not in plan.arguments]
    if missing:
        found = ", ".join(repr(name) for name in header) or "none"
        raise HeaderError(
            f"missing required column(s) {', '.join(missing)}; columns found: {found}"
        )
    used = set(plan.arguments.values())
    for argument, index in plan.arguments.items():
        plan.mapping[header[index]] = argument
    outputs: dict[str, str] = {}
    for index, name in enumerate(names):
        if index in used:
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
