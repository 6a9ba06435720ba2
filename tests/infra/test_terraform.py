"""Checks of the Terraform in ``infra/``, run by ``make test`` (and so by CI).

- ``terraform fmt -check``, ``validate`` and ``test`` (mocked providers), offline, through
  ``<repo>/../shared/tools/terraform-offline/tf_offline_check.sh`` (no provider registry here).
- checkov, pinned, from its own venv (``scripts/install_checkov.sh``), clean, with every skipped
  check carrying its reason.
- The functions' environment variables in Terraform are exactly the ones the code reads
  (``functions/settings.py`` SETTINGS), plus one ``LEANPLUM_DEV_KEY_<APP>`` secret per Leanplum
  app (``functions/leanplum_apps.py``), the only names allowed to come from a dynamic block.
- The functions' object grants on the landing, state and Leanplum buckets are exactly the rows
  of ``functions/access.py`` ACCESS (role by read or write, IAM condition by prefix), and the
  functions wait (``time_sleep``) for the grants their first deployment uses.

In CI (``CI=true``) a missing tool fails these tests; elsewhere it skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hcl2
import pytest

from functions.access import ACCESS, INCOMING, LEANPLUM_COPIES
from functions.config import (
    EMULATOR_VARIABLES,
    RESERVED_PREFIX,
    RESERVED_PREFIXES,
    SETTINGS,
    FunctionName,
    settings_for,
)
from functions.leanplum_apps import APP_NAME_RE, KEY_VARIABLE_PREFIX, key_variable

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SHARED = REPO.parent / "shared"
TF_OFFLINE_CHECK = SHARED / "tools" / "terraform-offline" / "tf_offline_check.sh"
CHECKOV_VENV = Path(os.environ.get("CHECKOV_VENV", REPO / ".venv-checkov"))
CHECKOV_VERSION = "3.3.30"
CHECKOV_MARKER = CHECKOV_VENV / f".installed-checkov-{CHECKOV_VERSION}"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    """A tool is missing: fail in CI (a skip there would pass unchecked infra), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: infra checks must run in CI)")
    pytest.skip(reason)


def _tf_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


# ---------------------------------------------------------------------------------------------
# terraform fmt / validate / test, offline
# ---------------------------------------------------------------------------------------------


#: Where ``terraform test`` files live: ``tests/`` runs inside the shared offline check, the
#: input-validation runs in ``tests_inputs/`` run beside it in a second process once the check
#: has built the stub providers (each run restarts them: about 5 s of CPU; two processes use
#: both cores of a CI machine and halve the wall time).
PARALLEL_TEST_DIRECTORY = "tests_inputs"
VALIDATED = "Success! The configuration is valid"  # ", but there were ... warnings" may follow


# About 4 minutes on a 2-core machine (some 60 `terraform test` runs against Python stub
# providers, in two processes); the limits leave room for a slower one.
@pytest.mark.timeout(1800)
def test_terraform_fmt_validate_and_test_offline() -> None:
    if shutil.which("terraform") is None:
        _unavailable("terraform is not on PATH")
    if not TF_OFFLINE_CHECK.is_file():
        _unavailable(f"{TF_OFFLINE_CHECK} is missing (shared/ must sit beside the repo clone)")
    env = dict(os.environ)
    # A stable cache, so only the first run on a machine builds the stub providers.
    env.setdefault("TF_OFFLINE_CACHE", str(Path.home() / ".cache" / "tf-offline"))
    check = subprocess.Popen(
        ["bash", str(TF_OFFLINE_CHECK), "infra"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert check.stdout is not None
    lines: list[str] = []
    inputs: subprocess.Popen[str] | None = None
    rc_file = str(Path(env["TF_OFFLINE_CACHE"]) / "terraformrc")
    inputs_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed below; a file, not a pipe nobody reads meanwhile)
    for line in check.stdout:  # the check prints VALIDATED once the providers are built
        lines.append(line)
        if inputs is None and VALIDATED in line:
            inputs = subprocess.Popen(
                ["terraform", "test", "-no-color", f"-test-directory={PARALLEL_TEST_DIRECTORY}"],
                cwd=INFRA,
                env={**env, "TF_CLI_CONFIG_FILE": rc_file},
                stdout=inputs_log,
                stderr=subprocess.STDOUT,
                text=True,
            )
    check.stdout.close()
    code = check.wait(timeout=1740)
    shown = "".join(lines)[-6000:]
    if code == 3:
        _unavailable("terraform test was not run (Terraform >= 1.7 needed)\n" + shown)
    assert code == 0, shown
    assert "Success!" in shown and " 0 failed" in shown, shown
    assert inputs is not None, "the offline check never validated the configuration:\n" + shown
    inputs.wait(timeout=1740)
    inputs_log.seek(0)
    out = inputs_log.read()
    inputs_log.close()
    assert inputs.returncode == 0, out[-6000:]
    assert " 0 failed" in out and "Success!" in out, out[-6000:]


# ---------------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------------


def _checkov() -> Path:
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if CHECKOV_MARKER.is_file() and checkov.is_file():
        return checkov
    install = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_checkov.sh")],
        env={**os.environ, "CHECKOV_VENV": str(CHECKOV_VENV)},
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    if install.returncode != 0 or not checkov.is_file():
        _unavailable(f"checkov {CHECKOV_VERSION} could not be installed\n" + _show(install))
    return checkov


@pytest.mark.timeout(900)
def test_checkov_is_clean() -> None:
    checkov = _checkov()
    result = subprocess.run(
        [
            str(checkov),
            "--framework",
            "terraform",
            "--skip-download",
            "-d",
            "infra",
            "--external-checks-dir",
            "infra/checkov",
            "--compact",
            "--quiet",
        ],
        cwd=REPO,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, _show(result)
    assert "Failed checks: 0" in result.stdout, _show(result)


SKIP_RE = re.compile(r"checkov:skip=([A-Z0-9_]+)(.*)")


def test_every_checkov_skip_carries_its_reason() -> None:
    skips = 0
    for path in _tf_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_RE.search(line)
            if not match:
                continue
            skips += 1
            reason = match.group(2).lstrip(": ").strip()
            assert len(reason) >= 20, f"{path.relative_to(REPO)}:{number}: skip without a reason"
    assert skips > 0  # the skips are known and few: see infra/README.md


# ---------------------------------------------------------------------------------------------
# Environment variables: Terraform == functions/config.py SETTINGS
# ---------------------------------------------------------------------------------------------


def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return parsed


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels: drop them."""
    return value[1:-1] if isinstance(value, str) and value[:1] == value[-1:] == '"' else value


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    """Every ``resource "KIND" "NAME"`` block in ``infra/``, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(INFRA.glob("*.tf")):
        for block in _parse(path).get("resource", []):
            for labels, bodies in block.items():
                if _unquote(labels) != kind:
                    continue
                for name, body in bodies.items():
                    if name != "__is_block__":
                        found[_unquote(name)] = body
    return found


#: The one dynamic secret variable allowed: each Leanplum app's key, ``LEANPLUM_DEV_KEY_<APP>``
#: (functions/leanplum_apps.py ``key_variable``), one per entry of ``var.leanplum_apps``, from
#: that app's own secret. python-hcl2 keeps the template as written.
APP_KEY_TEMPLATE = f"{KEY_VARIABLE_PREFIX}${{upper(secret_environment_variables.key)}}"
APP_KEY_FOR_EACH = "${var.leanplum_apps}"
APP_KEY_SECRET = (
    "${google_secret_manager_secret.leanplum_app_dev_key[secret_environment_variables.key]"
    ".secret_id}"
)


def _dynamic_secrets(name: str, service: dict[str, Any]) -> set[str]:
    """The templates of the dynamic ``secret_environment_variables`` blocks of one function,
    each checked to be the per-app key and nothing else."""
    templates: set[str] = set()
    for block in service.get("dynamic") or []:
        for label, body in block.items():
            if label == "__is_block__":
                continue
            assert _unquote(label) == "secret_environment_variables", (
                f"{name}: dynamic {label} blocks are not compared with SETTINGS"
            )
            [content] = body["content"]
            key = _unquote(content["key"])
            assert key == APP_KEY_TEMPLATE, f"{name}: dynamic secret {key} is not an app key"
            assert body["for_each"] == APP_KEY_FOR_EACH, f"{name}: app keys iterate leanplum_apps"
            assert content["secret"] == APP_KEY_SECRET, f"{name}: an app key reads its own secret"
            templates.add(key)
    return templates


def function_environment() -> dict[str, dict[str, set[str]]]:
    """For each ``google_cloudfunctions2_function``: plain, secret and dynamic secret env var
    names (the dynamic ones as their template, ``LEANPLUM_DEV_KEY_${upper(...)}``)."""
    found: dict[str, dict[str, set[str]]] = {}
    for name, body in _resources("google_cloudfunctions2_function").items():
        services = body["service_config"]
        [service] = services if isinstance(services, list) else [services]
        plain = service.get("environment_variables") or {}
        secrets = service.get("secret_environment_variables") or []
        found[name] = {
            "plain": {_unquote(key) for key in plain if key != "__is_block__"},
            "secret": {_unquote(secret["key"]) for secret in secrets},
            "dynamic": _dynamic_secrets(name, service),
        }
    return found


@pytest.mark.parametrize("function", ["ingest", "poller"])
def test_function_environment_matches_the_code(function: FunctionName) -> None:
    environments = function_environment()
    assert set(environments) == {"ingest", "poller"}
    expected = settings_for(function)
    env = environments[function]
    assert env["plain"] == {s.name for s in expected if not s.secret}
    assert env["secret"] == {s.name for s in expected if s.secret}
    assert not (env["plain"] | env["secret"]) & set(EMULATOR_VARIABLES)
    # Both functions read every app's key: the ingest function starts jobs, the poller starts
    # queued files and polls them.
    assert env["dynamic"] == {APP_KEY_TEMPLATE}


def test_app_key_variables_follow_the_code() -> None:
    """The template Terraform renders is the code's ``key_variable`` for every valid app name,
    and cannot collide with a setting of the table."""
    for app in ("prod", "dev_eu", "a", "x" * 30):
        assert APP_NAME_RE.match(app)
        assert key_variable(app) == APP_KEY_TEMPLATE.replace(
            "${upper(secret_environment_variables.key)}", app.upper()
        )
    names = {s.name for s in SETTINGS}
    assert not {n for n in names if n.startswith(KEY_VARIABLE_PREFIX)}
    assert "LEANPLUM_DEV_KEY" in names


def test_the_dynamic_secret_comparison_refuses_other_names() -> None:
    """Only ``LEANPLUM_DEV_KEY_<APP>`` may come from a dynamic block: anything else fails."""
    content = {"key": '"EXTRA_${upper(secret_environment_variables.key)}"', "secret": "x"}
    service = {
        "dynamic": [
            {'"secret_environment_variables"': {"for_each": APP_KEY_FOR_EACH, "content": [content]}}
        ]
    }
    with pytest.raises(AssertionError):
        _dynamic_secrets("example", service)
    other_block = {"dynamic": [{'"environment_variables"': {"for_each": "x", "content": [{}]}}]}
    with pytest.raises(AssertionError):
        _dynamic_secrets("example", other_block)


# ---------------------------------------------------------------------------------------------
# Other facts shared by the code and the Terraform
# ---------------------------------------------------------------------------------------------


def _variable_default(name: str) -> str:
    variables = {
        _unquote(label): body
        for block in _parse(INFRA / "variables.tf")["variable"]
        for label, body in block.items()
    }
    assert name in variables, f"variable {name} not found"
    assert "default" in variables[name], f"variable {name} has no default"
    return str(_unquote(variables[name]["default"]))


# Terraform variable behind each setting whose default should agree with the code's.
# POLL_MAX_ATTEMPTS is left out on purpose: Terraform derives it from the queue's retry budget.
# LEANPLUM_APP_ROUTES and LEANPLUM_APP_IDS are built from leanplum_apps and dry_run_prefixes
# (both empty by default: "none"), which infra/tests/wiring.tftest.hcl checks.
DEFAULTS = {
    "LEANPLUM_API_URL": "leanplum_api_url",
    "INCOMING_PREFIX": "incoming_prefix",
    "OLD_EVENT_POLICY": "old_event_policy",
    "MAX_FUTURE_SECONDS": "max_future_seconds",
    "MAX_REJECTED_FRACTION": "max_rejected_fraction",
    "MAX_DECOMPRESSED_BYTES": "max_decompressed_bytes",
    "MAX_COMPRESSION_RATIO": "max_compression_ratio",
    "MIN_EVENT_TIME": "min_event_time",
    "NAIVE_TIME_ZONE": "naive_time_zone",
    "DUPLICATE_ROWS": "duplicate_rows",
    "COLUMN_MAP": "column_map",
    "DROP_COLUMNS": "drop_columns",
    "DUPLICATE_POLICY": "duplicate_policy",
    "INGEST_LEASE_SECONDS": "ingest_timeout_seconds",  # each lease is its function's timeout
    "POLL_FIRST_DELAY_SECONDS": "poll_first_delay_seconds",
    "POLL_DEADLINE_SECONDS": "poll_deadline_seconds",
    "MAX_RUNNING_JOBS": "max_running_jobs",
    "MAX_QUEUED_SECONDS": "max_queued_seconds",
    "LEANPLUM_BUCKET": "leanplum_bucket",
    "LEANPLUM_BUCKET_PREFIX": "leanplum_bucket_prefix",
    "LEANPLUM_BUCKET_CLEANUP": "leanplum_bucket_cleanup",
}
#: How infra/functions.tf renders a variable's default where the spelling differs from the
#: code's: leanplum_bucket "" (not used) becomes "none"; a bool goes through tostring().
RENDERED = {"LEANPLUM_BUCKET": {"": "none"}}


def _rendered_default(setting: str) -> str:
    raw = _variable_default(DEFAULTS[setting])
    if raw in ("True", "False"):  # python-hcl2 reads `default = true` as a Python bool
        raw = raw.lower()
    return RENDERED.get(setting, {}).get(raw, raw)


@pytest.mark.parametrize("setting", sorted(DEFAULTS))
def test_variable_defaults_match_the_code(setting: str) -> None:
    code_default = next(s.default for s in SETTINGS if s.name == setting)
    assert _rendered_default(setting) == code_default


def test_every_optional_setting_has_its_default_compared() -> None:
    """A new optional setting needs its variable in DEFAULTS (or a reason to be left out)."""
    derived = {"POLL_MAX_ATTEMPTS", "LEANPLUM_APP_ROUTES", "LEANPLUM_APP_IDS"}
    optional = {s.name for s in SETTINGS if not s.required}
    assert optional - derived == set(DEFAULTS)


def test_reserved_prefixes_match_the_code() -> None:
    text = (INFRA / "main.tf").read_text()
    reserved = re.search(r'(?m)^\s*reserved_prefix\s*=\s*"([^"]+)"', text)
    assert reserved and reserved.group(1) == RESERVED_PREFIX
    for local, value in RESERVED_PREFIXES.items():
        match = re.search(rf'(?m)^\s*{local}\s*=\s*"\$\{{local\.reserved_prefix\}}([^"]+)"', text)
        assert match and RESERVED_PREFIX + match.group(1) == value, local


#: Live state of the importer (functions/settings.py): never deleted by a lifecycle rule.
KEPT_PREFIXES = {"records_prefix", "slots_prefix", "waiting_prefix"}


def test_lifecycle_rules_spare_the_live_state() -> None:
    """The state bucket's rules name only prefixes whose objects may expire; records, job slots
    and the waiting list have none (infra/storage.tf and infra/README.md say why)."""
    [state] = [
        body for name, body in _resources("google_storage_bucket").items() if name == "state"
    ]
    named: set[str] = set()
    for rule in state.get("lifecycle_rule", []):
        for condition in rule.get("condition", []):
            for prefix in condition.get("matches_prefix", []):
                named.add(str(prefix).removeprefix("${local.").removesuffix("}"))
    assert named == set(RESERVED_PREFIXES) - KEPT_PREFIXES
    assert set(RESERVED_PREFIXES) >= KEPT_PREFIXES


def test_no_public_principal_is_granted() -> None:
    public = re.compile(r"\ball(Authenticated)?Users\b")
    for path in _tf_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.match(r"^\s*members?\s*=", code):
                assert not public.search(code), f"{path.relative_to(REPO)}:{number}: {line.strip()}"


# ---------------------------------------------------------------------------------------------
# Object grants: Terraform == functions/access.py ACCESS
# ---------------------------------------------------------------------------------------------

#: The ``bucket`` argument of a grant, by bucket role of functions/access.py.
BUCKET_REFERENCES = {
    "${local.bucket_name}": "landing",
    "${google_storage_bucket.state.name}": "state",
    "${var.leanplum_bucket}": "leanplum",
}
#: The local holding ``projects/_/buckets/BUCKET/objects/`` of each bucket role (infra/iam.tf).
OBJECTS_LOCALS = {
    "landing": "landing_objects",
    "state": "state_objects",
    "leanplum": "leanplum_objects",
}
#: Read-only rows are objectViewer, read-write rows objectUser (overwrite needs delete).
ROLE_WRITES = {"roles/storage.objectViewer": False, "roles/storage.objectUser": True}
#: On Leanplum's bucket the role is chosen by leanplum_bucket_iam (a custom role holding exactly
#: create/get/delete or delete, or roles/storage.objectUser): read-write rows, that bucket only.
LEANPLUM_ROLE_WRITES = {
    "${local.leanplum_bucket_roles.ingest}": True,
    "${local.leanplum_bucket_roles.poller}": True,
}
FUNCTION_MEMBER = re.compile(r"^\$\{google_service_account\.(ingest|poller)\.member\}$")
#: ``resource.name.startsWith("${local.<bucket>_objects}${<prefix>}")`` as python-hcl2 prints it.
PREFIX_CLAUSE = re.compile(
    r'startsWith\(\\*"\$\{local\.(\w+)\}'
    r'\$\{(var\.incoming_prefix|var\.leanplum_bucket_prefix|local\.\w+)\}\\*"\)'
)

Row = tuple[str, str, bool, str]  # function, bucket role, write, prefix (INCOMING as is)


def _prefix(reference: str) -> str:
    """The prefix an HCL reference stands for, in the terms of functions/access.py."""
    if reference == "var.incoming_prefix":
        return INCOMING
    if reference == "var.leanplum_bucket_prefix":
        return LEANPLUM_COPIES
    local = reference.removeprefix("local.")
    assert local in RESERVED_PREFIXES, f"{reference}: not a reserved prefix of functions/config.py"
    return RESERVED_PREFIXES[local]


def _conditions(name: str, body: dict[str, Any]) -> list[str]:
    assert "dynamic" not in body, f"{name}: a function's grant must always carry its condition"
    conditions = body.get("condition") or []
    assert len(conditions) == 1, f"{name}: a function's grant needs exactly one IAM condition"
    return [str(conditions[0]["expression"])]


def terraform_object_rows() -> dict[str, set[Row]]:
    """Every (function, bucket, write, prefix) the functions are granted, by resource name."""
    rows: dict[str, set[Row]] = {}
    for name, body in _resources("google_storage_bucket_iam_member").items():
        member = FUNCTION_MEMBER.match(str(body.get("member", "")))
        if member is None:
            continue
        function = member.group(1)
        bucket_ref = str(body.get("bucket"))
        assert bucket_ref in BUCKET_REFERENCES, f"{name}: unknown bucket {bucket_ref}"
        bucket = BUCKET_REFERENCES[bucket_ref]
        role = _unquote(body.get("role"))
        if bucket == "leanplum":
            assert role in LEANPLUM_ROLE_WRITES, f"{name}: {role} is not a Leanplum bucket role"
            assert role.endswith(f".{function}}}"), f"{name}: {role} is another function's role"
            writes = LEANPLUM_ROLE_WRITES[role]
        else:
            assert role in ROLE_WRITES, f"{name}: {role} is neither objectViewer nor objectUser"
            writes = ROLE_WRITES[role]
        [expression] = _conditions(name, body)
        clauses = PREFIX_CLAUSE.findall(expression)
        assert clauses, f"{name}: no prefix clause in {expression}"
        assert len(clauses) == expression.count("startsWith("), f"{name}: unreadable clause"
        found: set[Row] = set()
        for objects_local, reference in clauses:
            assert objects_local == OBJECTS_LOCALS[bucket], (
                f"{name}: a {bucket} grant conditioned on local.{objects_local}"
            )
            found.add((function, bucket, writes, _prefix(reference)))
        rows[name] = found
    return rows


def access_rows() -> set[Row]:
    return {
        (function, grant.bucket, grant.write, grant.prefix)
        for function, grants in ACCESS.items()
        for grant in grants
    }


def _by_grant(rows: set[Row]) -> dict[tuple[str, str, str], list[str]]:
    """Prefixes per (function, bucket, role), for readable failures."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for function, bucket, write, prefix in rows:
        role = "roles/storage.objectUser" if write else "roles/storage.objectViewer"
        grouped.setdefault((function, bucket, role), []).append(prefix)
    return {key: sorted(prefixes) for key, prefixes in sorted(grouped.items())}


def test_object_grants_follow_the_access_table() -> None:
    per_resource = terraform_object_rows()
    terraform: set[Row] = set()
    for name, rows in per_resource.items():
        assert not rows & terraform, f"{name} repeats a grant made elsewhere"
        terraform |= rows
    assert _by_grant(terraform) == _by_grant(access_rows())


def test_leanplum_bucket_grants_list_nothing() -> None:
    """On Leanplum's bucket the functions reach their copies only: no bucket-level clause (no
    listing of Leanplum's objects), and the access table has rows there for both functions."""
    grants = {
        name: body
        for name, body in _resources("google_storage_bucket_iam_member").items()
        if str(body.get("bucket")) == "${var.leanplum_bucket}"
    }
    assert set(grants) == {"ingest_leanplum_write", "poller_leanplum_write"}
    for name, body in grants.items():
        [expression] = _conditions(name, body)
        assert "resource.type" not in expression, f"{name}: no bucket-level clause"
    assert {row[0] for row in access_rows() if row[1] == "leanplum"} == {"ingest", "poller"}


def test_each_grant_is_one_function_bucket_and_role() -> None:
    for name, rows in terraform_object_rows().items():
        assert len({(function, bucket, write) for function, bucket, write, _ in rows}) == 1, name


def _all_resources() -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``resource "KIND" "NAME"`` block in ``infra/``, as (kind, name, body)."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted(INFRA.glob("*.tf")):
        for block in _parse(path).get("resource", []):
            for labels, bodies in block.items():
                for name, body in bodies.items():
                    if name != "__is_block__":
                        found.append((str(_unquote(labels)), str(_unquote(name)), body))
    return found


def test_functions_have_no_storage_role_outside_those_grants() -> None:
    """A project-wide or bucket binding would bypass the conditions the table is compared with."""
    member = re.compile(r"google_service_account\.(ingest|poller)\.(member|email)")
    for kind, name, body in _all_resources():
        if kind == "google_storage_bucket_iam_member":
            continue
        role = str(_unquote(body.get("role", "")))
        who = str(body.get("member", "")) + str(body.get("members", ""))
        assert not (role.startswith("roles/storage.") and member.search(who)), (
            f"{kind}.{name} grants {role} to a function"
        )


def test_an_added_row_or_grant_fails_the_comparison() -> None:
    """The comparison sees both directions: a row without a grant, a grant without a row."""
    terraform = set().union(*terraform_object_rows().values())
    extra_row = ("poller", "landing", True, INCOMING)
    assert _by_grant(terraform) != _by_grant(access_rows() | {extra_row})
    assert _by_grant(terraform | {extra_row}) != _by_grant(access_rows())


# ---------------------------------------------------------------------------------------------
# First apply: the functions wait for the grants they use (infra/waits.tf)
# ---------------------------------------------------------------------------------------------


def _depends_on(body: dict[str, Any]) -> set[str]:
    return {str(ref).removeprefix("${").removesuffix("}") for ref in body.get("depends_on", [])}


def _grants_of(account: str) -> set[str]:
    """Addresses of every IAM grant in infra/ whose member is ``account``'s service account."""
    member = f"${{google_service_account.{account}.member}}"
    return {
        f"{kind}.{name}"
        for kind, name, body in _all_resources()
        if kind.endswith("_iam_member") and str(body.get("member", "")) == member
    }


WAITS = {
    "ingest": {"build_iam", "runtime_iam", "eventarc_iam", "eventarc_agent"},
    "poller": {"build_iam", "runtime_iam"},
}


@pytest.mark.parametrize("function", sorted(WAITS))
def test_functions_wait_for_the_grants_they_use(function: str) -> None:
    body = _resources("google_cloudfunctions2_function")[function]
    waits = {f"time_sleep.{name}" for name in WAITS[function]}
    assert waits <= _depends_on(body)


def test_each_wait_follows_its_grants() -> None:
    sleeps = _resources("time_sleep")
    assert set(sleeps) == {
        "build_iam",
        "runtime_iam",
        "eventarc_iam",
        "eventarc_agent",
        "history_iam",  # infra/history.tf: the table grant before the BigQuery subscription
        "results_metric",  # infra/alerts.tf: the log-based metric before its alert policy
    }
    build = _grants_of("build")
    assert len(build) >= 4 and "google_project_iam_member.build_gcf_sources_reader" in build
    assert build <= _depends_on(sleeps["build_iam"])
    runtime = _grants_of("ingest") | _grants_of("poller")
    assert any("secret_manager" in grant for grant in runtime)
    assert runtime <= _depends_on(sleeps["runtime_iam"])
    assert {
        "google_project_iam_member.trigger_event_receiver",
        "google_project_iam_member.gcs_agent_pubsub_publisher",
    } <= _depends_on(sleeps["eventarc_iam"])
    assert "google_project_service.enabled" in _depends_on(sleeps["eventarc_agent"])
    for name, body in sleeps.items():
        assert str(body["create_duration"]) == "${local.propagation_wait}", name
