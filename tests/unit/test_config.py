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
    "START_QUEUE": "projects/p/locations/europe-west1/queues/start",
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


def test_the_poller_needs_no_start_queue_but_the_poll_queue() -> None:
    """It answers the start queue's tasks (which wait by 503) and creates poll tasks."""
    env = {k: v for k, v in INGEST_ENV.items() if k != "START_QUEUE"}
    config = load_poller_config(env)
    assert config.poll_deadline_seconds == 86_400
    assert config.tasks_queue == INGEST_ENV["TASKS_QUEUE"]


@pytest.mark.parametrize(
    ("config_class", "function"), [(IngestConfig, "ingest"), (PollerConfig, "poller")]
)
def test_each_function_holds_exactly_the_settings_it_reads(
    config_class: type, function: FunctionName
) -> None:
    names = {f.name.upper() for f in fields(config_class)}
    assert names == {s.name for s in settings_for(function)}


def test_a_setting_of_the_other_function_is_not_checked() -> None:
    config = load_poller_config({**INGEST_ENV, "START_QUEUE": "not a queue"})
    assert isinstance(config, PollerConfig)
    assert isinstance(load_config("ingest", INGEST_ENV), IngestConfig)


def test_each_setting_belongs_to_a_function_and_has_a_description() -> None:
    assert {s.name for s in settings_for("ingest")} | {s.name for s in settings_for("poller")} == {
        s.name for s in SETTINGS
    }
    assert all(s.description for s in SETTINGS)
    assert [s.name for s in SETTINGS if s.secret] == ["LEANPLUM_DEV_KEY"]


def test_each_routed_app_needs_an_id_and_its_own_key_at_start_up() -> None:
    env = {**INGEST_ENV, "LEANPLUM_APP_ROUTES": "incoming/dev/=dev,incoming/prod/=prod"}
    with pytest.raises(ConfigError) as caught:
        load_ingest_config({**env, "LEANPLUM_APP_IDS": "dev=app_dev", "LEANPLUM_DEV_KEY_DEV": "k"})
    assert "app 'prod' has no id" in str(caught.value)
    assert "LEANPLUM_DEV_KEY_PROD" in str(caught.value)
    config = load_poller_config(
        {
            **env,
            "LEANPLUM_APP_IDS": "dev=app_dev,prod=app_prod",
            "LEANPLUM_DEV_KEY_DEV": "key-dev",
            "LEANPLUM_DEV_KEY_PROD": "key-prod",
        }
    )
    routes = config.leanplum_app_routes
    assert routes.app_for("incoming/prod/a.csv") == "prod"
    assert routes.get("prod").app_id == "app_prod"
    assert routes.get("prod").dev_key == "key-prod"
    assert routes.app_for("incoming/other.csv") == "default"
    assert routes.get(None).app_id == "app"
    assert "key-prod" not in repr(config)


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        pytest.param("incoming/a/", "prefix=app", id="no-app"),
        pytest.param("incoming/a/=Prod", "must match", id="bad-name"),
        pytest.param("incoming/a/=default", "unrouted files go there", id="default"),
        pytest.param("incoming/a/=x,incoming/a/=y", "routed twice", id="twice"),
    ],
)
def test_a_malformed_route_is_named(routes: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_ingest_config({**INGEST_ENV, "LEANPLUM_APP_ROUTES": routes})
    assert words in str(caught.value)


def test_the_longest_prefix_wins_and_dry_run_needs_no_key() -> None:
    config = load_ingest_config(
        {
            **INGEST_ENV,
            "LEANPLUM_APP_ROUTES": "incoming/=dry-run,incoming/prod/=prod",
            "LEANPLUM_APP_IDS": "prod=app_prod",
            "LEANPLUM_DEV_KEY_PROD": "k",
        }
    )
    assert config.leanplum_app_routes.app_for("incoming/prod/x.csv") == "prod"
    assert config.leanplum_app_routes.app_for("incoming/x.csv") == "dry-run"
