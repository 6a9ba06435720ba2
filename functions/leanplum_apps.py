"""Which Leanplum app a file goes to: routing incoming prefixes to apps, each with its own key.

Why: teams keep a development and a production app and want a backfill checked in the first
before it reaches the second. The simple default stays one app (``LEANPLUM_APP_ID`` and
``LEANPLUM_DEV_KEY``, named ``default``); ``LEANPLUM_APP_ROUTES`` sends prefixes elsewhere, and
the reserved app ``dry-run`` means "validate, rewrite and report, but call no Leanplum app".

The record keeps the app's *name* only: the poller finds the id and key in its own
configuration, so no key is ever written to a bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_APP = "default"
DRY_RUN = "dry-run"
#: App names become part of an environment variable's name (``LEANPLUM_DEV_KEY_<NAME>``).
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
KEY_VARIABLE_PREFIX = "LEANPLUM_DEV_KEY_"


def key_variable(app: str) -> str:
    """The environment variable holding ``app``'s development key."""
    return KEY_VARIABLE_PREFIX + app.upper()


def _pairs(value: str, what: str) -> list[tuple[str, str]]:
    if value in ("", "none"):
        return []
    pairs = []
    for item in value.split(","):
        left, sep, right = item.strip().partition("=")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"{item.strip()!r} is not {what}")
        pairs.append((left.strip(), right.strip()))
    return pairs


def parse_routes(value: str) -> dict[str, str]:
    """``prefix=app,...`` → {prefix: app}; raises ValueError naming the bad entry."""
    routes: dict[str, str] = {}
    for prefix, app in _pairs(value, "prefix=app"):
        if app != DRY_RUN and not APP_NAME_RE.match(app):
            raise ValueError(f"app name {app!r} must match {APP_NAME_RE.pattern} or be {DRY_RUN}")
        if app == DEFAULT_APP:
            raise ValueError(f"{DEFAULT_APP!r} is LEANPLUM_APP_ID's app: unrouted files go there")
        if prefix in routes:
            raise ValueError(f"prefix {prefix!r} is routed twice")
        routes[prefix] = app
    return routes


def parse_app_ids(value: str) -> dict[str, str]:
    """``app=id,...`` → {app: id}; raises ValueError naming the bad entry."""
    ids: dict[str, str] = {}
    for app, app_id in _pairs(value, "app=id"):
        if not APP_NAME_RE.match(app) or app == DEFAULT_APP:
            raise ValueError(f"app name {app!r} must match {APP_NAME_RE.pattern}, not default")
        ids[app] = app_id
    return ids


def check_app_routes(value: str) -> str | None:
    try:
        parse_routes(value)
    except ValueError as exc:
        return f"must look like incoming/dev/=dev,incoming/check/=dry-run ({exc})"
    return None


def check_app_ids(value: str) -> str | None:
    try:
        parse_app_ids(value)
    except ValueError as exc:
        return f"must look like dev=app_123,prod=app_456 ({exc})"
    return None


@dataclass(frozen=True)
class LeanplumApp:
    """One Leanplum app: its name in routes and records, its id and its development key."""

    name: str
    app_id: str
    dev_key: str = field(repr=False)


@dataclass(frozen=True)
class AppRoutes:
    """The apps a deployment knows and the prefix routing to them."""

    apps: Mapping[str, LeanplumApp]
    routes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        *,
        default_app_id: str,
        default_dev_key: str,
        routes: str,
        app_ids: str,
        environ: Mapping[str, str],
    ) -> AppRoutes:
        """The routing of the settings; raises ValueError naming every app that lacks an id
        or a key, so a deployment fails at start-up, not at the first file for that app."""
        routed = parse_routes(routes)
        ids = parse_app_ids(app_ids)
        apps = {DEFAULT_APP: LeanplumApp(DEFAULT_APP, default_app_id, default_dev_key)}
        problems = []
        for name in sorted({app for app in routed.values() if app != DRY_RUN} | set(ids)):
            key = environ.get(key_variable(name), "").strip()
            if name not in ids:
                problems.append(f"app {name!r} has no id in LEANPLUM_APP_IDS")
            if not key:
                problems.append(f"app {name!r} has no key: set {key_variable(name)}")
            apps[name] = LeanplumApp(name, ids.get(name, ""), key)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(apps=apps, routes=routed)

    @classmethod
    def single(cls, app_id: str, dev_key: str) -> AppRoutes:
        return cls(apps={DEFAULT_APP: LeanplumApp(DEFAULT_APP, app_id, dev_key)})

    def app_for(self, object_name: str) -> str:
        """The app name for an object: the longest routed prefix it starts with, else default."""
        matches = [prefix for prefix in self.routes if object_name.startswith(prefix)]
        return self.routes[max(matches, key=len)] if matches else DEFAULT_APP

    def get(self, name: str | None) -> LeanplumApp:
        """The app a record names (records from before routing name none: the default)."""
        return self.apps[name or DEFAULT_APP]

    @property
    def dev_keys(self) -> list[str]:
        return [app.dev_key for app in self.apps.values() if app.dev_key]
