"""Checks of the Terraform in ``infra/``, run by ``make test`` (and so by CI).

- ``terraform fmt -check``, ``validate`` and ``test`` (mocked providers), offline, through
  ``<repo>/../shared/tools/terraform-offline/tf_offline_check.sh`` (no provider registry here).
- checkov, pinned, from its own venv (``scripts/install_checkov.sh``), clean, with every skipped
  check carrying its reason.
- The functions' environment variables in Terraform are exactly the ones the code reads
  (``functions/config.py`` SETTINGS).

In CI (``CI=true``) a missing tool fails these tests; elsewhere it skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from functions.config import (
    EMULATOR_VARIABLES,
    RESERVED_PREFIX,
    RESERVED_PREFIXES,
    SETTINGS,
    FunctionName,
    settings_for,
)

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


@pytest.mark.timeout(900)
def test_terraform_fmt_validate_and_test_offline() -> None:
    if shutil.which("terraform") is None:
        _unavailable("terraform is not on PATH")
    if not TF_OFFLINE_CHECK.is_file():
        _unavailable(f"{TF_OFFLINE_CHECK} is missing (shared/ must sit beside the repo clone)")
    env = dict(os.environ)
    # A stable cache, so only the first run on a machine builds the stub providers.
    env.setdefault("TF_OFFLINE_CACHE", str(Path.home() / ".cache" / "tf-offline"))
    result = subprocess.run(
        ["bash", str(TF_OFFLINE_CHECK), "infra"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    if result.returncode == 3:
        _unavailable("terraform test was not run (Terraform >= 1.7 needed)\n" + _show(result))
    assert result.returncode == 0, _show(result)
    assert "Success!" in result.stdout and " 0 failed" in result.stdout, _show(result)


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


def function_environment() -> dict[str, dict[str, set[str]]]:
    """For each ``google_cloudfunctions2_function``: plain and secret env var names."""
    found: dict[str, dict[str, set[str]]] = {}
    for name, body in _resources("google_cloudfunctions2_function").items():
        services = body["service_config"]
        [service] = services if isinstance(services, list) else [services]
        plain = service.get("environment_variables") or {}
        secrets = service.get("secret_environment_variables") or []
        found[name] = {
            "plain": {_unquote(key) for key in plain if key != "__is_block__"},
            "secret": {_unquote(secret["key"]) for secret in secrets},
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
DEFAULTS = {
    "LEANPLUM_API_URL": "leanplum_api_url",
    "INCOMING_PREFIX": "incoming_prefix",
    "OLD_EVENT_POLICY": "old_event_policy",
    "MAX_FUTURE_SECONDS": "max_future_seconds",
    "MAX_REJECTED_FRACTION": "max_rejected_fraction",
    "MIN_EVENT_TIME": "min_event_time",
    "DUPLICATE_POLICY": "duplicate_policy",
    "INGEST_LEASE_SECONDS": "ingest_timeout_seconds",  # the lease is the function's timeout
    "POLL_FIRST_DELAY_SECONDS": "poll_first_delay_seconds",
    "POLL_DEADLINE_SECONDS": "poll_deadline_seconds",
}


@pytest.mark.parametrize("setting", sorted(DEFAULTS))
def test_variable_defaults_match_the_code(setting: str) -> None:
    code_default = next(s.default for s in SETTINGS if s.name == setting)
    assert _variable_default(DEFAULTS[setting]) == code_default


def test_reserved_prefixes_match_the_code() -> None:
    text = (INFRA / "main.tf").read_text()
    reserved = re.search(r'(?m)^\s*reserved_prefix\s*=\s*"([^"]+)"', text)
    assert reserved and reserved.group(1) == RESERVED_PREFIX
    for local, value in RESERVED_PREFIXES.items():
        match = re.search(rf'(?m)^\s*{local}\s*=\s*"\$\{{local\.reserved_prefix\}}([^"]+)"', text)
        assert match and RESERVED_PREFIX + match.group(1) == value, local


def test_no_public_principal_is_granted() -> None:
    public = re.compile(r"\ball(Authenticated)?Users\b")
    for path in _tf_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.match(r"^\s*members?\s*=", code):
                assert not public.search(code), f"{path.relative_to(REPO)}:{number}: {line.strip()}"
