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

import pytest

from functions.config import (
    ARCHIVE_PREFIX,
    EMULATOR_VARIABLES,
    RECORDS_PREFIX,
    REPORTS_PREFIX,
    RESERVED_PREFIX,
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


def _strip_comments(text: str) -> str:
    """Blank out #, // and /* */ comments outside strings, keeping offsets."""
    out = list(text)
    i, n = 0, len(text)
    stack = ["code"]  # code | string | interp
    while i < n:
        mode, ch = stack[-1], text[i]
        if mode == "string":
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                stack.pop()
            elif text.startswith("${", i):
                stack.append("interp")
                i += 2
                continue
            i += 1
            continue
        if ch == '"':
            stack.append("string")
        elif ch == "}" and mode == "interp":
            stack.pop()
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
            continue
        i += 1
    return "".join(out)


def _block_body(text: str, open_brace: int) -> str:
    """The text between the brace at ``open_brace`` and its match, strings and ``${}`` aware."""
    assert text[open_brace] == "{"
    depth, i, n = 0, open_brace, len(text)
    stack = ["code"]
    while i < n:
        mode, ch = stack[-1], text[i]
        if mode == "string":
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                stack.pop()
            elif text.startswith("${", i):
                stack.append("interp")
                i += 2
                continue
        elif ch == '"':
            stack.append("string")
        elif text.startswith("<<", i) and mode == "code":
            raise AssertionError("heredocs are not supported by this parser")
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if mode == "interp":
                stack.pop()
            else:
                depth -= 1
                if depth == 0:
                    return text[open_brace + 1 : i]
        i += 1
    raise AssertionError("unbalanced braces")


def _blocks(text: str, header: str) -> list[str]:
    """Bodies of the blocks whose header (e.g. ``service_config``) opens at nesting depth 0."""
    bodies = []
    for match in re.finditer(rf"(?m)^\s*{header}\s*(=\s*)?\{{", text):
        start = match.end() - 1
        if _depth_at(text, match.start()) == 0:
            bodies.append(_block_body(text, start))
    return bodies


def _depth_at(text: str, position: int) -> int:
    """Brace depth at ``position`` (strings ignored)."""
    depth, in_string, i = 0, False, 0
    while i < position:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        i += 1
    return depth


def _map_keys(body: str) -> set[str]:
    """Keys of an HCL object literal body, one ``KEY = value`` per line."""
    keys = set()
    for line in body.splitlines():
        if not line.strip():
            continue
        match = re.match(r'^\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*=', line)
        assert match, f"unexpected line in an environment map: {line!r}"
        keys.add(match.group(1))
    return keys


def function_environment(tf_text: str) -> dict[str, dict[str, set[str]]]:
    """For each ``google_cloudfunctions2_function``: plain and secret env var names."""
    text = _strip_comments(tf_text)
    found: dict[str, dict[str, set[str]]] = {}
    header = re.compile(r'(?m)^\s*resource\s+"google_cloudfunctions2_function"\s+"([^"]+)"\s*\{')
    for match in header.finditer(text):
        body = _block_body(text, match.end() - 1)
        service = _blocks(body, "service_config")
        assert len(service) == 1, f"{match.group(1)}: expected one service_config block"
        plain = _blocks(service[0], "environment_variables")
        assert len(plain) <= 1
        secret_keys = set()
        for secret in _blocks(service[0], "secret_environment_variables"):
            key = re.search(r'(?m)^\s*key\s*=\s*"([^"]+)"', secret)
            assert key, f"{match.group(1)}: secret_environment_variables without a literal key"
            secret_keys.add(key.group(1))
        found[match.group(1)] = {
            "plain": _map_keys(plain[0]) if plain else set(),
            "secret": secret_keys,
        }
    return found


def test_parser_reads_plain_and_secret_variables() -> None:
    sample = """
    resource "google_cloudfunctions2_function" "f" {
      build_config {
        environment_variables = { BUILD_ONLY = "x" }
      }
      service_config {
        # COMMENTED = "no"
        environment_variables = {
          A   = "${var.x}-}{"   // braces in strings and comments: "{"
          B_2 = tostring(var.n) /* C = 1 */
        }
        secret_environment_variables {
          key     = "S"
          version = "latest"
        }
      }
    }
    """
    assert function_environment(sample) == {"f": {"plain": {"A", "B_2"}, "secret": {"S"}}}


@pytest.mark.parametrize("function", ["ingest", "poller"])
def test_function_environment_matches_the_code(function: FunctionName) -> None:
    tf_text = "\n".join(path.read_text() for path in sorted(INFRA.glob("*.tf")))
    environments = function_environment(tf_text)
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
    text = _strip_comments((INFRA / "variables.tf").read_text())
    match = re.search(rf'(?m)^variable\s+"{name}"\s*\{{', text)
    assert match, f"variable {name} not found"
    body = _block_body(text, match.end() - 1)
    default = re.search(r"(?m)^\s*default\s*=\s*(.+?)\s*$", body)
    assert default, f"variable {name} has no default"
    return default.group(1).strip('"')


# Terraform variable behind each setting whose default should agree with the code's.
# POLL_MAX_ATTEMPTS is left out on purpose: Terraform derives it from the queue's retry budget.
DEFAULTS = {
    "LEANPLUM_API_URL": "leanplum_api_url",
    "INCOMING_PREFIX": "incoming_prefix",
    "OLD_EVENT_POLICY": "old_event_policy",
    "MAX_FUTURE_SECONDS": "max_future_seconds",
    "MAX_REJECTED_FRACTION": "max_rejected_fraction",
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
    for local, value in (
        ("records_prefix", RECORDS_PREFIX),
        ("archive_prefix", ARCHIVE_PREFIX),
        ("reports_prefix", REPORTS_PREFIX),
    ):
        match = re.search(rf'(?m)^\s*{local}\s*=\s*"\$\{{local\.reserved_prefix\}}([^"]+)"', text)
        assert match and RESERVED_PREFIX + match.group(1) == value, local


def test_no_public_principal_is_granted() -> None:
    public = re.compile(r"\ball(Authenticated)?Users\b")
    for path in _tf_files():
        text = _strip_comments(path.read_text())
        for number, line in enumerate(text.splitlines(), start=1):
            if re.match(r"^\s*members?\s*=", line):
                assert not public.search(line), f"{path.relative_to(REPO)}:{number}: {line.strip()}"
