"""What ``make up`` and ``make demo`` take from the caller's environment.

Why: a person trying the importer locally wants to try its settings (``MAX_RUNNING_JOBS=2
make up``, ``LEANPLUM_APP_ROUTES=...``) without editing code, and may want the local cloud to
talk to their own Leanplum development app instead of the simulator. The command line builds
the local cloud's :class:`~local_cloud.stack.Settings` from here; :class:`LocalCloud` itself
never reads the caller's environment, so the tests that start it stay hermetic.

Two groups of variables are *not* taken over as they are:

* the Leanplum identity (``LEANPLUM_API_URL``, ``LEANPLUM_APP_ID``, ``LEANPLUM_DEV_KEY``):
  with ``LEANPLUM_API_URL`` set they switch the local cloud to that Leanplum (and then both
  others are required); without it the simulator's own app and key are used;
* the wiring (:data:`LOCAL_WIRING`): they name the local cloud's own topic, bucket, queues and
  URL; a value meant for a deployment would point the functions at resources the emulators
  do not have.

Nothing here prints or returns a key in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from functions.leanplum_apps import KEY_VARIABLE_PREFIX
from functions.settings import SETTINGS

API_URL = "LEANPLUM_API_URL"
APP_ID = "LEANPLUM_APP_ID"
DEV_KEY = "LEANPLUM_DEV_KEY"
LEANPLUM_IDENTITY = (API_URL, APP_ID, DEV_KEY)
#: Settings that name the local cloud's own resources: the local cloud always sets them.
LOCAL_WIRING = (
    "RESULTS_TOPIC",
    "STATE_BUCKET",
    "TASKS_QUEUE",
    "START_QUEUE",
    "POLLER_URL",
    "TASKS_SERVICE_ACCOUNT",
)
SETTING_NAMES = frozenset(setting.name for setting in SETTINGS)


class CallerEnvError(ValueError):
    """The caller's environment cannot start a local cloud; the message names the variables
    (never a secret's value)."""


@dataclass(frozen=True)
class RealLeanplum:
    """The Leanplum the functions talk to instead of the simulator (the key never shown)."""

    api_url: str
    app_id: str
    dev_key: str = field(repr=False)


def is_function_variable(name: str) -> bool:
    """True for a variable the functions read: a setting or an app's ``LEANPLUM_DEV_KEY_<APP>``."""
    return name in SETTING_NAMES or name.startswith(KEY_VARIABLE_PREFIX)


def _value(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def real_leanplum(environ: Mapping[str, str]) -> RealLeanplum | None:
    """The Leanplum named by ``LEANPLUM_API_URL`` with its app id and key, or ``None`` (the
    simulator) when the URL is not set.

    :raises CallerEnvError: the URL is set but malformed, or the app id or key is missing:
        the local cloud must not start half-configured against a real service.
    """
    url = _value(environ, API_URL)
    if not url:
        return None
    problems = [
        f"{name} is missing"
        for name in (APP_ID, DEV_KEY)
        if not _value(environ, name)  # by name only: the key's value is never shown
    ]
    url_problem = _check(API_URL, url)
    if url_problem:
        problems.insert(0, f"{API_URL}={url!r} {url_problem}")
    if problems:
        raise CallerEnvError(
            f"{API_URL} is set, so the local cloud would talk to that Leanplum instead of its "
            f"simulator, and that needs {API_URL}, {APP_ID} and {DEV_KEY}: "
            + "; ".join(problems)
            + ". Nothing was started."
        )
    return RealLeanplum(url, _value(environ, APP_ID), _value(environ, DEV_KEY))


def function_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Every setting of :data:`functions.settings.SETTINGS` (and every app key
    ``LEANPLUM_DEV_KEY_<APP>``) set in ``environ``, to override the local defaults; without
    the Leanplum identity and the wiring (see the module's docstring).

    :raises CallerEnvError: naming every value the functions would refuse at start-up, so
        ``make up`` fails before it starts anything.
    """
    chosen = {
        name: value.strip()
        for name, value in environ.items()
        if is_function_variable(name)
        and value.strip()
        and name not in LEANPLUM_IDENTITY
        and name not in LOCAL_WIRING
    }
    problems = []
    for name, value in sorted(chosen.items()):
        problem = _check(name, value)
        if problem:
            shown = "<secret>" if _secret(name) else repr(value)
            problems.append(f"{name}={shown} {problem}")
    if problems:
        raise CallerEnvError("; ".join(problems) + ". Nothing was started.")
    return chosen


def ignored_variables(environ: Mapping[str, str]) -> list[str]:
    """Names set in ``environ`` that the local cloud does not pass on, for a note to the user:
    the wiring always, the app id and key when no ``LEANPLUM_API_URL`` selects a Leanplum."""
    names = [name for name in LOCAL_WIRING if _value(environ, name)]
    if not _value(environ, API_URL):
        names += [name for name in (APP_ID, DEV_KEY) if _value(environ, name)]
    return names


def _check(name: str, value: str) -> str | None:
    setting = next((s for s in SETTINGS if s.name == name), None)
    if setting is None or setting.check is None:
        return None
    return setting.check(value)


def _secret(name: str) -> bool:
    if name.startswith(KEY_VARIABLE_PREFIX):
        return True
    return any(s.secret for s in SETTINGS if s.name == name)


__all__ = [
    "LEANPLUM_IDENTITY",
    "LOCAL_WIRING",
    "CallerEnvError",
    "RealLeanplum",
    "function_settings",
    "ignored_variables",
    "is_function_variable",
    "real_leanplum",
]
