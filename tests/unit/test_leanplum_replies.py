"""The one reading of Leanplum's reply elements and results-file lines."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.leanplum_replies import (
    MAX_MESSAGE_CHARS,
    NO_SUCCESS_FLAG,
    NOT_AN_OBJECT,
    element_problem,
    first_element,
    message_of,
    result_line_problem,
)

PAST = "Past event detected (731 days ago). Rewriting timestamp."

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ELEMENTS = st.dictionaries(
    st.sampled_from(["success", "error", "warning", "jobId", "message"]) | st.text(), JSON
)


@pytest.mark.parametrize(
    ("element", "expected"),
    [pytest.param({"success": True}, None, id="clean-success"),
     pytest.param({"success": True, "jobId": "j", "error": None}, None, id="null-error-is-none"),
     pytest.param({"success": True, "warning": {"message": PAST}}, PAST, id="warning"),
     pytest.param({"success": False, "error": {"message": "Bad"}}, "Bad", id="error"),
     pytest.param({"success": True, "error": {"message": "E"}, "warning": {"message": "W"}}, "E",
                  id="error-before-warning"),
     pytest.param({"warning": "plain text "}, "plain text", id="warning-as-string"),
     pytest.param({"error": {"code": 7}}, '{"code": 7}', id="error-without-message"),
     pytest.param({"error": {"message": ""}}, '{"message": ""}', id="error-empty-message"),
     pytest.param({"error": {"message": 42}}, '{"message": 42}', id="error-number-message"),
     pytest.param({"success": True, "error": {}}, "{}", id="empty-error-object"),
     pytest.param({"success": True, "warning": False}, "false", id="warning-false"),
     pytest.param({"success": False}, "success=false", id="success-false"),
     pytest.param({"success": "true"}, 'success="true"', id="success-string"),
     pytest.param({"success": 1}, "success=1", id="success-one"),
     pytest.param({"success": None}, "success=null", id="success-null"),
     pytest.param({}, NO_SUCCESS_FLAG, id="empty"),
     pytest.param({"jobId": "j", "state": "FINISHED"}, NO_SUCCESS_FLAG, id="no-success-flag")],
)  # fmt: skip
def test_element_problem(element: dict[str, Any], expected: str | None) -> None:
    assert element_problem(element) == expected


@pytest.mark.parametrize("value", [None, [], "success", 3, [{"success": True}]])
def test_element_problem_of_a_non_object(value: Any) -> None:
    assert element_problem(cast(Any, value)) == NOT_AN_OBJECT


def test_a_long_message_is_cut() -> None:
    problem = element_problem({"error": {"message": "m" * 5000}})
    assert problem is not None
    assert len(problem) == MAX_MESSAGE_CHARS
    assert problem.endswith("…")


@pytest.mark.parametrize(
    ("value", "expected"),
    [pytest.param({"message": " spaced "}, "spaced", id="strip"),
     pytest.param({1: "a", "b": 2}, "<dict>", id="unsortable-keys"),
     pytest.param("   ", '"   "', id="blank-string"),
     pytest.param(["a", 1], '["a", 1]', id="list"),
     pytest.param({"message": "é"}, "é", id="unicode")],
)  # fmt: skip
def test_message_of(value: Any, expected: str) -> None:
    assert message_of(value) == expected


def test_message_of_a_cycle_names_its_type() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    assert message_of(cycle) == "<list>"


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param({"response": [{"success": True, "jobId": "j"}, {}]},
                  {"success": True, "jobId": "j"}, id="first-of-many"),
     pytest.param({"response": []}, {}, id="empty-list"),
     pytest.param({"response": ["x"]}, {}, id="not-an-object"),
     pytest.param({"response": {"success": True}}, {}, id="response-not-a-list"),
     pytest.param({"success": True}, {}, id="no-response"),
     pytest.param([{"success": True}], {}, id="bare-list"),
     pytest.param(None, {}, id="none"),
     pytest.param("text", {}, id="text")],
)  # fmt: skip
def test_first_element(body: Any, expected: dict[str, Any]) -> None:
    assert first_element(body) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [pytest.param('{"success":true}', None, id="success"),
     pytest.param(b'{"success":true}\n', None, id="bytes"),
     pytest.param('{"success":true,"warning":{"message":"' + PAST + '"}}', PAST, id="warning"),
     pytest.param('{"success":false,"error":{"message":"Bad time"}}', "Bad time", id="error"),
     pytest.param('{"success":false}', "success=false", id="success-false"),
     pytest.param("{}", NO_SUCCESS_FLAG, id="no-success-flag"),
     pytest.param("[1, 2]", "unreadable result line: not a JSON object", id="array"),
     pytest.param("null", "unreadable result line: not a JSON object", id="null"),
     pytest.param('{"success":tr', "unreadable result line: not JSON", id="truncated"),
     pytest.param("", "unreadable result line: not JSON", id="empty"),
     pytest.param("[" * 100_000, "unreadable result line: not JSON", id="too-deep"),
     pytest.param(b"\xff\xfe{}", "unreadable result line: not UTF-8", id="not-utf8")],
)  # fmt: skip
def test_result_line_problem(line: str | bytes, expected: str | None) -> None:
    assert result_line_problem(line) == expected


def test_a_reply_element_and_a_result_line_are_read_alike() -> None:
    for element in ({"success": True}, {"success": True, "warning": {"message": PAST}}, {}):
        assert result_line_problem(json.dumps(element)) == element_problem(element)


@settings(database=None)
@given(JSON)
def test_element_problem_never_raises_on_any_json_value(value: Any) -> None:
    problem = element_problem(value)
    assert problem is None or isinstance(problem, str)
    assert problem is None or len(problem) <= MAX_MESSAGE_CHARS


@settings(database=None)
@given(ELEMENTS)
def test_only_a_true_success_without_error_or_warning_is_clean(element: dict[str, Any]) -> None:
    clean = (
        element.get("success") is True
        and element.get("error") is None
        and element.get("warning") is None
    )
    assert (element_problem(element) is None) is clean
    assert result_line_problem(json.dumps(element)) == element_problem(element)


@settings(database=None)
@given(st.binary() | st.text())
def test_result_line_problem_never_raises_on_any_line(line: bytes | str) -> None:
    problem = result_line_problem(line)
    assert problem is None or isinstance(problem, str)
