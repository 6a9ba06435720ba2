"""The history table keeps in step with the result message (``infra/history.tf``).

The BigQuery subscription writes each result message into the table with ``use_table_schema``
(each field of the JSON message to the column of the same name) and ``drop_unknown_fields =
false`` (a field without a column makes the write fail, and the message is dead-lettered). What
it really accepts only Google's service can show; offline, these tests stand in for it:

- every field of ``schemas/result-message.schema.json``, recursively, has a column of a
  compatible type in ``infra/history/results-table.schema.json`` (the file Terraform reads with
  ``file()``), and every column is a field of the message or one of the metadata columns that
  ``write_metadata`` fills; a field added to one and not the other fails;
- the messages the code builds (``functions/results.py``, every status, the poller's job
  entries) fit the table value by value, as the subscription would map them;
- the Terraform around it: the subscription's options these tests assume, the partitioning and
  clustering columns, the Pub/Sub service agent's grants, and the columns the README's queries use.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from functions.import_record import ImportRecord, Part, Timings, ValidationSummary
from functions.lifecycle import Status
from functions.results import STATUSES, LeanplumCounts, build_message
from tests.infra.test_terraform import _all_resources, _depends_on, _parse, _resources, _unquote

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
TABLE_SCHEMA_FILE = INFRA / "history" / "results-table.schema.json"
MESSAGE_SCHEMA_FILE = REPO / "schemas" / "result-message.schema.json"

Column = dict[str, Any]

#: What ``write_metadata`` adds to each row, by column name and BigQuery type. ``attributes``
#: may be STRING or JSON; JSON lets a query read ``JSON_VALUE(attributes.status)``.
METADATA_COLUMNS = {
    "subscription_name": {"STRING"},
    "message_id": {"STRING"},
    "publish_time": {"TIMESTAMP"},
    "attributes": {"STRING", "JSON"},
}

#: BigQuery column types that take each JSON Schema scalar type as the message carries it.
SCALAR_TYPES = {
    "string": {"STRING"},
    "integer": {"INTEGER", "INT64"},
    "number": {"FLOAT", "FLOAT64"},
    "boolean": {"BOOLEAN", "BOOL"},
}
RECORD_TYPES = {"RECORD", "STRUCT"}
#: A map (an object with free-text keys, ``additionalProperties`` only) is one JSON column:
#: its keys (Leanplum's warning messages, rejection reasons) cannot be column names.
MAP_TYPE = "JSON"


def table_schema() -> list[Column]:
    columns: list[Column] = json.loads(TABLE_SCHEMA_FILE.read_text())
    return columns


def message_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(MESSAGE_SCHEMA_FILE.read_text())
    return schema


def _by_name(columns: list[Column]) -> dict[str, Column]:
    names = [column["name"] for column in columns]
    assert len(names) == len(set(names)), f"duplicate columns: {names}"
    return {column["name"]: column for column in columns}


def _message_columns(columns: list[Column]) -> list[Column]:
    return [column for column in columns if column["name"] not in METADATA_COLUMNS]


# ---------------------------------------------------------------------------------------------
# The comparison: JSON Schema <-> BigQuery schema, in both directions
# ---------------------------------------------------------------------------------------------


def _kind(field: dict[str, Any], where: str) -> tuple[str, bool]:
    """The JSON type of ``field`` (one of SCALAR_TYPES, "record", "map", "array") and whether
    it may be null."""
    if "const" in field or "enum" in field:
        values = [field["const"]] if "const" in field else list(field["enum"])
        nullable = None in values
        kinds = {type(value) for value in values if value is not None}
        assert kinds == {str}, f"{where}: only string enums and consts are mapped"
        return "string", nullable
    declared = field.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    assert len(types) == 1, f"{where}: one JSON type (besides null) per field, got {declared}"
    [kind] = types
    if kind == "object":
        if "properties" in field:
            return "record", nullable
        if field.get("additionalProperties") not in (None, False):
            return "map", nullable
        raise AssertionError(f"{where}: an object without properties or additionalProperties")
    return kind, nullable


def differences(fields: dict[str, Any], columns: list[Column], where: str = "") -> list[str]:
    """Every way ``columns`` fails to mirror the JSON Schema ``fields`` (empty: in step)."""
    problems: list[str] = []
    by_name = _by_name(columns)
    for name in sorted(set(fields) - set(by_name)):
        problems.append(f"{where}{name}: a field of the message without a column")
    for name in sorted(set(by_name) - set(fields)):
        problems.append(f"{where}{name}: a column without a field in the message")
    for name in sorted(set(fields) & set(by_name)):
        problems += _column_problems(fields[name], by_name[name], f"{where}{name}")
    return problems


def _column_problems(field: dict[str, Any], column: Column, where: str) -> list[str]:
    mode = column.get("mode", "NULLABLE")
    kind, _ = _kind(field, where)
    if mode == "REQUIRED":
        # A REQUIRED column refuses the write of any message where the value is null or absent.
        return [f"{where}: REQUIRED column (every column is NULLABLE or REPEATED)"]
    if kind == "array":
        if mode != "REPEATED":
            return [f"{where}: an array in the message, a {mode} column"]
        items = field.get("items")
        assert isinstance(items, dict), f"{where}: an array without items"
        kind, nullable = _kind(items, f"{where}[]")
        if nullable:
            return [f"{where}: null items, which a REPEATED column refuses"]
        if kind == "array":
            return [f"{where}: an array of arrays has no BigQuery column"]
        field = items
    elif mode != "NULLABLE":
        return [f"{where}: a {kind} in the message, a {mode} column"]
    column_type = column["type"]
    if kind == "record":
        if column_type not in RECORD_TYPES:
            return [f"{where}: an object with properties in the message, a {column_type} column"]
        return differences(field["properties"], column.get("fields", []), f"{where}.")
    if column.get("fields"):
        return [f"{where}: a {column_type} column with nested fields"]
    if kind == "map":
        if column_type != MAP_TYPE:
            return [f"{where}: a map with free-text keys in the message, a {column_type} column"]
        return []
    if column_type not in SCALAR_TYPES[kind]:
        return [f"{where}: {kind} in the message, a {column_type} column"]
    return []


def schema_differences(message: dict[str, Any], columns: list[Column]) -> list[str]:
    return differences(message["properties"], _message_columns(columns))


# ---------------------------------------------------------------------------------------------
# The schemas as they are
# ---------------------------------------------------------------------------------------------


def test_every_field_has_a_compatible_column_and_every_column_a_field() -> None:
    problems = schema_differences(message_schema(), table_schema())
    assert problems == [], "\n".join(problems)


def test_the_table_has_the_metadata_columns_write_metadata_fills() -> None:
    columns = _by_name(table_schema())
    for name, types in METADATA_COLUMNS.items():
        assert name in columns, f"write_metadata needs a {name} column"
        assert columns[name]["type"] in types, name
        assert columns[name].get("mode", "NULLABLE") == "NULLABLE", name
    # The message must not carry a field Pub/Sub's metadata would collide with.
    assert not set(METADATA_COLUMNS) & set(message_schema()["properties"])


def test_the_maps_are_json_columns() -> None:
    counts = _by_name(_by_name(table_schema())["counts"]["fields"])
    for name in ("rows_rejected_by_reason", "leanplum_warnings_by_message"):
        assert counts[name]["type"] == MAP_TYPE, name


def _column(columns: list[Column], *path: str) -> Column:
    column: Column = {"fields": columns}
    for name in path:
        column = _by_name(column["fields"])[name]
    return column


def _add_field(message: dict[str, Any], columns: list[Column]) -> None:
    message["properties"]["counts"]["properties"]["rows_deduplicated"] = {"type": "integer"}


def _add_column(message: dict[str, Any], columns: list[Column]) -> None:
    _column(columns, "timings")["fields"].append(
        {"name": "seconds_in_flight", "type": "FLOAT", "mode": "NULLABLE"}
    )


def _add_top_level_field(message: dict[str, Any], columns: list[Column]) -> None:
    message["properties"]["attempt"] = {"type": "integer"}


def _drop_nested_column(message: dict[str, Any], columns: list[Column]) -> None:
    fields = _column(columns, "jobs")["fields"]
    fields[:] = [field for field in fields if field["name"] != "files"]


def _retype_column(message: dict[str, Any], columns: list[Column]) -> None:
    _column(columns, "file", "size_bytes")["type"] = "STRING"


def _retype_field(message: dict[str, Any], columns: list[Column]) -> None:
    message["properties"]["timings"]["properties"]["seconds_job"]["type"] = ["string", "null"]


def _map_as_string(message: dict[str, Any], columns: list[Column]) -> None:
    _column(columns, "counts", "leanplum_warnings_by_message")["type"] = "STRING"


def _jobs_not_repeated(message: dict[str, Any], columns: list[Column]) -> None:
    _column(columns, "jobs")["mode"] = "NULLABLE"


def _required_column(message: dict[str, Any], columns: list[Column]) -> None:
    _column(columns, "status")["mode"] = "REQUIRED"


def _record_as_json(message: dict[str, Any], columns: list[Column]) -> None:
    column = _column(columns, "uris")
    column["type"] = "JSON"
    del column["fields"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_add_field, "counts.rows_deduplicated"),
        (_add_top_level_field, "attempt"),
        (_add_column, "timings.seconds_in_flight"),
        (_drop_nested_column, "jobs.files"),
        (_retype_column, "file.size_bytes"),
        (_retype_field, "timings.seconds_job"),
        (_map_as_string, "counts.leanplum_warnings_by_message"),
        (_jobs_not_repeated, "jobs"),
        (_required_column, "status"),
        (_record_as_json, "uris"),
    ],
)
def test_a_change_to_one_side_only_fails(change: Any, named: str) -> None:
    """The comparison sees each direction and each kind of mismatch, and names the field."""
    message, columns = message_schema(), table_schema()
    change(message, columns)
    problems = schema_differences(message, columns)
    assert problems, f"{named}: the change went unnoticed"
    assert any(problem.startswith(f"{named}:") for problem in problems), problems


# ---------------------------------------------------------------------------------------------
# The messages the code builds, value by value, as the subscription maps them
# ---------------------------------------------------------------------------------------------


def _fit(value: Any, column: Column, where: str) -> list[str]:
    mode = column.get("mode", "NULLABLE")
    if mode == "REPEATED":
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__} for a REPEATED column"]
        single = {**column, "mode": "NULLABLE"}
        problems = [f"{where}[]: null in a REPEATED column" for item in value if item is None]
        for index, item in enumerate(value):
            if item is not None:
                problems += _fit(item, single, f"{where}[{index}]")
        return problems
    if value is None:
        return []
    column_type = column["type"]
    if column_type in RECORD_TYPES:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__} for a RECORD column"]
        return fit_row(value, column["fields"], f"{where}.")
    if column_type == "JSON":
        return []
    if isinstance(value, bool):
        ok = column_type in SCALAR_TYPES["boolean"]
    elif isinstance(value, int):
        ok = column_type in SCALAR_TYPES["integer"] | SCALAR_TYPES["number"]
    elif isinstance(value, float):
        ok = column_type in SCALAR_TYPES["number"]
    elif isinstance(value, str):
        ok = column_type in SCALAR_TYPES["string"]
    else:
        ok = False
    return [] if ok else [f"{where}: {type(value).__name__} for a {column_type} column"]


def fit_row(message: dict[str, Any], columns: list[Column], where: str = "") -> list[str]:
    """What a BigQuery subscription with use_table_schema and drop_unknown_fields = false would
    refuse in ``message``: a key without a column, a value of another type."""
    by_name = _by_name(columns)
    problems: list[str] = []
    for key, value in message.items():
        if key not in by_name:
            problems.append(f"{where}{key}: no column (the write would be refused)")
        else:
            problems += _fit(value, by_name[key], f"{where}{key}")
    return problems


def _record() -> ImportRecord:
    record = ImportRecord(
        bucket="landing",
        object="incoming/events.csv",
        generation=1795923615358130,
        timings=Timings(
            uploaded_at="2026-11-29T03:40:15.358113Z", job_started_at="2026-11-29T03:40:15.545Z"
        ),
    )
    record.sha256 = "e" * 64
    record.size_bytes = 598
    record.validation = ValidationSummary(rows_total=10, rows_rejected=2, rows_time_clamped=3)
    record.validation.full["rejections_by_reason"] = {"time: not a date": 2}
    record.parts = [
        Part("importer/parts/a.csv", 8, 500, "gs://state/importer/parts/a.csv", job_id="job-1")
    ]
    record.job_ids = ["job-1"]
    record.uris.report = "gs://state/importer/reports/incoming/events.csv/1/report.json"
    return record


#: A job entry as the poller writes it (the keys come from the code: see the AST test below).
JOB = {
    "job_id": "job-1",
    "state": "FINISHED",
    "successes_count": 7,
    "failures_count": 1,
    "error": None,
    "files": ["https://leanplum/results/job-1/0.json"],
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("with_jobs", [True, False], ids=["poller-jobs", "job-ids-only"])
def test_the_messages_the_code_builds_fit_the_table(status: str, with_jobs: bool) -> None:
    message = build_message(
        _record(),
        Status(status),
        reason=None if status == "SUCCEEDED" else "why",
        leanplum=LeanplumCounts(
            successes=7,
            failures=1,
            warnings_by_message={"Unknown parameter 'x'": 3},
            files=["https://leanplum/results/job-1/0.json"],
        ),
        jobs=[dict(JOB)] if with_jobs else None,
    )
    jsonschema.validate(message, message_schema())
    published = json.loads(json.dumps(message, sort_keys=True))  # as functions/results.py sends it
    problems = fit_row(published, _message_columns(table_schema()))
    assert problems == [], "\n".join(problems)


def test_a_message_with_an_extra_key_would_be_refused() -> None:
    message = build_message(_record(), Status.SUCCEEDED, jobs=[{**JOB, "attempts": 3}])
    message["note"] = "hello"
    problems = fit_row(message, _message_columns(table_schema()))
    assert "note: no column (the write would be refused)" in problems
    assert "jobs[0].attempts: no column (the write would be refused)" in problems


def _job_entry_keys() -> list[tuple[str, set[str]]]:
    """Every dict literal in functions/ with a "job_id" key: the job entries of a message."""
    found: list[tuple[str, set[str]]] = []
    for path in sorted((REPO / "functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Dict):
                continue
            keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
            if "job_id" in keys:
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", {str(k) for k in keys}))
    return found


def test_every_job_entry_the_code_builds_has_its_columns() -> None:
    """The JSON Schema lets a job entry carry more keys than it names; the table does not."""
    entries = _job_entry_keys()
    assert any(len(keys) > 1 for _, keys in entries), "the poller's job entries were not found"
    job_columns = {field["name"] for field in _column(table_schema(), "jobs")["fields"]}
    for where, keys in entries:
        assert keys <= job_columns, f"{where}: {sorted(keys - job_columns)} have no column"
    assert set(JOB) == max((keys for _, keys in entries), key=len)


# ---------------------------------------------------------------------------------------------
# The Terraform these tests assume
# ---------------------------------------------------------------------------------------------


def test_terraform_reads_this_schema_file() -> None:
    [locals_block] = [
        block
        for block in _parse(INFRA / "history.tf").get("locals", [])
        if "history_schema" in block
    ]
    assert locals_block["history_schema"] == (
        '${file("${path.module}/history/results-table.schema.json")}'
    )
    table = _resources("google_bigquery_table")["history"]
    assert table["schema"] == "${local.history_schema}"


def test_partitioned_by_publish_time_and_clustered_by_status() -> None:
    table = _resources("google_bigquery_table")["history"]
    [partitioning] = table["time_partitioning"]
    assert _unquote(partitioning["type"]) == "DAY"
    assert _unquote(partitioning["field"]) == "publish_time"
    assert [_unquote(column) for column in table["clustering"]] == ["status"]
    columns = _by_name(table_schema())
    assert columns["publish_time"]["type"] == "TIMESTAMP"  # filled by write_metadata
    assert columns["status"]["type"] == "STRING"


def test_the_subscription_maps_messages_as_these_tests_assume() -> None:
    subscription = _resources("google_pubsub_subscription")["history"]
    [config] = subscription["bigquery_config"]
    assert config["use_table_schema"] is True
    assert config["use_topic_schema"] is False
    assert config["write_metadata"] is True
    assert config["drop_unknown_fields"] is False
    assert "service_account_email" not in config  # the Pub/Sub service agent writes
    assert subscription["topic"] == "${google_pubsub_topic.results.id}"
    assert "filter" not in subscription  # every result
    [dead_letters] = subscription["dead_letter_policy"]
    assert dead_letters["dead_letter_topic"] == "${google_pubsub_topic.history_dead_letter[0].id}"


PUBSUB_AGENT = "${local.pubsub_service_agent}"
#: Where the Pub/Sub service agent may be granted anything: single topics, subscriptions, tables.
AGENT_SCOPES = {
    "google_pubsub_topic_iam_member",
    "google_pubsub_subscription_iam_member",
    "google_bigquery_table_iam_member",
}


def test_the_pubsub_agent_is_granted_single_resources_only() -> None:
    grants = [
        (kind, name, body)
        for kind, name, body in _all_resources()
        if "_iam_" in kind
        and PUBSUB_AGENT in str(body.get("member", "")) + str(body.get("members", ""))
    ]
    assert {kind for kind, _, _ in grants} == AGENT_SCOPES
    for kind, name, body in grants:
        role = _unquote(body["role"])
        if kind == "google_bigquery_table_iam_member":
            assert role == "roles/bigquery.dataEditor", name
            assert body["table_id"] == "${google_bigquery_table.history[0].table_id}", name
        else:
            assert role in {"roles/pubsub.publisher", "roles/pubsub.subscriber"}, name
    # No project- or dataset-wide BigQuery role for anyone but the history's readers.
    for kind, name, body in _all_resources():
        role = str(_unquote(body.get("role", "")))
        if role.startswith("roles/bigquery."):
            assert kind in {
                "google_bigquery_table_iam_member",
                "google_bigquery_dataset_iam_member",
            }
            if kind == "google_bigquery_dataset_iam_member":
                assert role == "roles/bigquery.dataViewer", name
                assert body["member"] == "${each.value}", name


def test_the_subscription_waits_for_the_grants_it_is_created_with() -> None:
    subscription = _resources("google_pubsub_subscription")["history"]
    assert "time_sleep.history_iam" in _depends_on(subscription)
    wait = _resources("time_sleep")["history_iam"]
    assert {
        "google_bigquery_table_iam_member.pubsub_agent_history_writer",
        "google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher",
    } <= _depends_on(wait)
    policy = _resources("google_monitoring_alert_policy")["problem_results"]
    assert "time_sleep.results_metric" in _depends_on(policy)


# ---------------------------------------------------------------------------------------------
# The README's queries use columns that exist
# ---------------------------------------------------------------------------------------------

SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.DOTALL)


def test_the_readme_queries_name_real_columns() -> None:
    readme = (INFRA / "README.md").read_text()
    queries = SQL_BLOCK.findall(readme)
    assert len(queries) >= 3, "infra/README.md shows the history queries in ```sql blocks"
    columns = _by_name(table_schema())
    records = {name for name, column in columns.items() if column["type"] in RECORD_TYPES}
    reference = re.compile(rf"\b({'|'.join(sorted(records))})\.(\w+)")
    for query in queries:
        assert "publish_time" in query, f"every query filters on the partitioning column:\n{query}"
        for record, field in reference.findall(query):
            nested = {f["name"] for f in columns[record]["fields"]}
            assert field in nested, f"{record}.{field} is not a column:\n{query}"
