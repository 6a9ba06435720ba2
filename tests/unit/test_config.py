"""Configuration is read from the environment and every problem is named at once."""

from __future__ import annotations

from dataclasses import fields

import pytest

from functions.config import (
    DEFAULT_LEANPLUM_API_URL,
    SETTINGS,
    FunctionName,
    IngestConfig,
    PollerConfig,
    load_config,
    load_ingest_config,
    load_poller_config,
    settings_for,
)
from functions.errors import ConfigError

INGEST_ENV = {
    "LEANPLUM_APP_ID": "app",
    "LEANPLUM_DEV_KEY": "dev-secret-value",
    "RESULTS_TOPIC": "projects/p/topics/results",
    "STATE_BUCKET": "importer-state",
    "TASKS_QUEUE": "projects/p/locations/europe-west1/queues/poll",
    "POLLER_URL": "https://poller.example.run.app",
    "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
}


def test_ingest_config_with_defaults() -> None:
    config = load_ingest_config(INGEST_ENV)
    assert config.leanplum_api_url == DEFAULT_LEANPLUM_API_URL
    assert config.incoming_prefix == "incoming/"
    assert config.old_event_policy == "move"
    assert config.max_rejected_fraction == pytest.approx(0.1)
    assert config.poll_first_delay_seconds == 15


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("ingest", {"LEANPLUM_APP_ID": "app"})
    message = str(caught.value)
    for name in (
        "LEANPLUM_DEV_KEY",
        "RESULTS_TOPIC",
        "TASKS_QUEUE",
        "POLLER_URL",
        "TASKS_SERVICE_ACCOUNT",
    ):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("RESULTS_TOPIC", "results", "projects/PROJECT/topics/TOPIC", id="topic"),
        pytest.param("TASKS_QUEUE", "projects/p/queues/q", "queues/QUEUE", id="queue"),
        pytest.param("POLLER_URL", "poller", "http(s) URL", id="url"),
        pytest.param("OLD_EVENT_POLICY", "drop", "move, reject, keep", id="policy"),
        pytest.param("MAX_REJECTED_FRACTION", "10%", "between 0 and 1", id="fraction"),
        pytest.param("INCOMING_PREFIX", "importer/in/", "reserved prefix", id="reserved"),
    ],
)
def test_malformed_values_are_named_with_the_expected_shape(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_config("ingest", {**INGEST_ENV, name: value})
    assert expected in str(caught.value)


def test_the_key_is_never_quoted_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("ingest", {**INGEST_ENV, "POLLER_URL": "nope"})
    assert "dev-secret-value" not in str(caught.value)
    assert "dev-secret-value" not in repr(load_config("ingest", INGEST_ENV))


def test_poller_needs_no_queue_settings() -> None:
    env = {k: v for k, v in INGEST_ENV.items() if k not in ("TASKS_QUEUE", "POLLER_URL")}
    config = load_poller_config(env)
    assert config.poll_deadline_seconds == 86_400


@pytest.mark.parametrize(
    ("config_class", "function"), [(IngestConfig, "ingest"), (PollerConfig, "poller")]
)
def test_each_function_holds_exactly_the_settings_it_reads(
    config_class: type, function: FunctionName
) -> None:
    names = {f.name.upper() for f in fields(config_class)}
    assert names == {s.name for s in settings_for(function)}


def test_a_setting_of_the_other_function_is_not_checked() -> None:
    config = load_poller_config({**INGEST_ENV, "POLLER_URL": "not a url"})
    assert isinstance(config, PollerConfig)
    assert isinstance(load_config("ingest", INGEST_ENV), IngestConfig)


def test_each_setting_belongs_to_a_function_and_has_a_description() -> None:
    assert {s.name for s in settings_for("ingest")} | {s.name for s in settings_for("poller")} == {
        s.name for s in SETTINGS
    }
    assert all(s.description for s in SETTINGS)
    assert [s.name for s in SETTINGS if s.secret] == ["LEANPLUM_DEV_KEY"]
