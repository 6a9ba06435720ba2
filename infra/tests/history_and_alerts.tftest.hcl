# The import history in BigQuery (history.tf) and the alerts (alerts.tf), offline with mocks.
# What the BigQuery subscription really writes is Google's to decide: the schema-in-step test
# (tests/infra/test_history_schema.py) compares the table with the message instead.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
  mock_data "google_storage_project_service_account" {
    defaults = {
      email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    }
  }
  mock_data "google_cloud_run_v2_service" {
    defaults = {
      urls = ["https://lp-importer-poller-123456789012.europe-west1.run.app"]
    }
  }
  mock_resource "google_cloudfunctions2_function" {
    defaults = {
      service_config = {
        uri = "https://mocked-abcdefghij-ew.a.run.app"
      }
    }
  }
  # Mocked ids in the provider's formats, so that references by id can be checked.
  mock_resource "google_pubsub_topic" {
    defaults = {
      id = "projects/acme-importer-test/topics/mocked"
    }
  }
  mock_resource "google_monitoring_alert_policy" {
    defaults = {
      name = "projects/acme-importer-test/alertPolicies/1234"
    }
  }
}

mock_provider "archive" {
  # A fixed hash: a random one per plan would change the source object, and so both functions,
  # between runs, deferring the check block poller_url's read to an apply that plan runs never make.
  mock_data "archive_file" {
    defaults = {
      output_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
    }
  }
}

mock_provider "time" {}

variables {
  project_id      = "acme-importer-test"
  region          = "europe-west1"
  leanplum_app_id = "app_test"
}

# One apply of the same configuration checks 3 things (each was its own run;
# merged because every run starts the stub providers again, about 5 s each).
run "history_is_on_by_default_partitioned_by_publish_time_and_clustered_by_status" {
  # -- history_is_on_by_default_partitioned_by_publish_time_and_clustered_by_status
  assert {
    condition     = length(google_bigquery_dataset.history) == 1 && google_bigquery_dataset.history[0].dataset_id == "lp_importer_history" && google_bigquery_dataset.history[0].location == "europe-west1"
    error_message = "The history dataset is <name_prefix>_history, in the functions' region."
  }
  assert {
    condition     = google_bigquery_dataset.history[0].delete_contents_on_destroy == false && google_bigquery_table.history[0].deletion_protection == true
    error_message = "Neither the dataset nor the table may take the history with them by default."
  }
  assert {
    condition     = google_bigquery_table.history[0].table_id == "results" && google_bigquery_table.history[0].dataset_id == google_bigquery_dataset.history[0].dataset_id
    error_message = "The history table is <dataset>.results."
  }
  assert {
    condition     = google_bigquery_table.history[0].schema == file("history/results-table.schema.json")
    error_message = "The table's schema is infra/history/results-table.schema.json, the file the schema test reads."
  }
  assert {
    condition = (
      google_bigquery_table.history[0].time_partitioning[0].type == "DAY" &&
      google_bigquery_table.history[0].time_partitioning[0].field == "publish_time"
    )
    error_message = "Daily partitions on publish_time."
  }
  assert {
    condition     = one([for c in jsondecode(google_bigquery_table.history[0].schema) : c.type if c.name == "publish_time"]) == "TIMESTAMP"
    error_message = "The partitioning column is a TIMESTAMP column of the schema."
  }
  assert {
    condition     = google_bigquery_table.history[0].clustering == tolist(["status"]) && one([for c in jsondecode(google_bigquery_table.history[0].schema) : c.type if c.name == "status"]) == "STRING"
    error_message = "Clustered by the status column."
  }
  assert {
    condition = alltrue([
      for name in ["file", "counts", "jobs", "uris", "timings"] :
      one([for c in jsondecode(google_bigquery_table.history[0].schema) : c.type if c.name == name]) == "RECORD"
    ])
    error_message = "file, counts, jobs, uris and timings are nested records."
  }
  assert {
    condition     = one([for c in jsondecode(google_bigquery_table.history[0].schema) : c.mode if c.name == "jobs"]) == "REPEATED"
    error_message = "jobs is a repeated record."
  }
  assert {
    condition     = output.history_table == "acme-importer-test.lp_importer_history.results"
    error_message = "The history_table output is PROJECT.DATASET.TABLE."
  }
  assert {
    condition     = contains(keys(google_project_service.enabled), "bigquery.googleapis.com") && contains(keys(google_project_service.enabled), "monitoring.googleapis.com")
    error_message = "The BigQuery and Monitoring APIs are enabled."
  }

  # -- the_bigquery_subscription_writes_every_result_with_its_metadata
  assert {
    condition = (
      google_pubsub_subscription.history[0].topic == google_pubsub_topic.results.id &&
      google_pubsub_subscription.history[0].name == "lp-importer-history" &&
      google_pubsub_subscription.history[0].filter == null
    )
    error_message = "The history subscription reads every message of the results topic (no filter)."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].bigquery_config[0].table == "acme-importer-test.lp_importer_history.results"
    error_message = "It writes to the history table, named PROJECT.DATASET.TABLE."
  }
  assert {
    condition = (
      google_pubsub_subscription.history[0].bigquery_config[0].use_table_schema == true &&
      google_pubsub_subscription.history[0].bigquery_config[0].use_topic_schema == false
    )
    error_message = "The JSON message's fields go to the table's columns (use_table_schema; the topic has no schema)."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].bigquery_config[0].write_metadata == true
    error_message = "write_metadata fills publish_time (the partitioning column), message_id, subscription_name and attributes."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].bigquery_config[0].drop_unknown_fields == false
    error_message = "A field the table lacks must be refused (dead-lettered), never silently dropped."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].bigquery_config[0].service_account_email == null
    error_message = "The Pub/Sub service agent writes (the identity the table grant names)."
  }
  assert {
    condition = (
      google_pubsub_subscription.history[0].dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.history_dead_letter[0].id &&
      google_pubsub_subscription.history[0].dead_letter_policy[0].max_delivery_attempts == 10 &&
      google_pubsub_topic.history_dead_letter[0].name == "lp-importer-history-dead-letter"
    )
    error_message = "Messages the table refuses go to the history's own dead-letter topic after 10 attempts."
  }
  assert {
    condition     = google_pubsub_subscription.history_dead_letter[0].topic == google_pubsub_topic.history_dead_letter[0].id && google_pubsub_subscription.history_dead_letter[0].expiration_policy[0].ttl == ""
    error_message = "The refused messages are kept by a subscription that never expires."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].expiration_policy[0].ttl == "" && google_pubsub_subscription.history[0].retry_policy[0].minimum_backoff == "10s"
    error_message = "The history subscription never expires for inactivity and backs off refused writes."
  }
  assert {
    condition     = output.history_subscription == google_pubsub_subscription.history[0].id && output.history_dead_letter_subscription == google_pubsub_subscription.history_dead_letter[0].id
    error_message = "The history's subscriptions are outputs."
  }

  # -- the_pubsub_service_agent_writes_that_table_only
  assert {
    condition = (
      google_bigquery_table_iam_member.pubsub_agent_history_writer[0].member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com" &&
      google_bigquery_table_iam_member.pubsub_agent_history_writer[0].role == "roles/bigquery.dataEditor" &&
      google_bigquery_table_iam_member.pubsub_agent_history_writer[0].dataset_id == "lp_importer_history" &&
      google_bigquery_table_iam_member.pubsub_agent_history_writer[0].table_id == "results"
    )
    error_message = "The Pub/Sub service agent gets roles/bigquery.dataEditor on the history table, and nothing wider."
  }
  assert {
    condition     = length(google_bigquery_table_iam_member.pubsub_agent_history_writer[0].condition) == 0
    error_message = "The grant is on the table resource itself (no condition needed)."
  }
  assert {
    condition = (
      google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher[0].topic == google_pubsub_topic.history_dead_letter[0].name &&
      google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher[0].role == "roles/pubsub.publisher" &&
      google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher[0].member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    )
    error_message = "Dead-lettering: the service agent publishes to the history's dead-letter topic."
  }
  assert {
    condition = (
      google_pubsub_subscription_iam_member.pubsub_agent_history_subscriber[0].subscription == google_pubsub_subscription.history[0].name &&
      google_pubsub_subscription_iam_member.pubsub_agent_history_subscriber[0].role == "roles/pubsub.subscriber" &&
      google_pubsub_subscription_iam_member.pubsub_agent_history_subscriber[0].member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    )
    error_message = "Dead-lettering: the service agent acknowledges the history subscription's messages."
  }
  assert {
    condition     = time_sleep.history_iam[0].create_duration == "180s" && time_sleep.history_iam[0].triggers["table"] == "results"
    error_message = "The subscription is created after a wait for the table grant to propagate."
  }
  assert {
    condition     = length(google_bigquery_dataset_iam_member.history_readers) == 0
    error_message = "Nobody is granted the history unless history_reader_members is set."
  }
}

run "history_readers_view_the_dataset" {
  variables {
    history_reader_members            = ["group:data@example.com"]
    history_location                  = "EU"
    history_partition_expiration_days = 400
    history_dataset_id                = "imports"
  }
  assert {
    condition = (
      google_bigquery_dataset_iam_member.history_readers["group:data@example.com"].role == "roles/bigquery.dataViewer" &&
      google_bigquery_dataset_iam_member.history_readers["group:data@example.com"].dataset_id == "imports"
    )
    error_message = "A reader gets roles/bigquery.dataViewer on the history dataset."
  }
  assert {
    condition     = google_bigquery_dataset.history[0].location == "EU" && google_bigquery_table.history[0].time_partitioning[0].expiration_ms == 34560000000
    error_message = "history_location and history_partition_expiration_days reach the dataset and the partitions."
  }
  assert {
    condition     = google_pubsub_subscription.history[0].bigquery_config[0].table == "acme-importer-test.imports.results"
    error_message = "The subscription follows a renamed dataset."
  }
}

run "history_can_be_turned_off" {
  variables {
    enable_history = false
  }
  assert {
    condition = (
      length(google_bigquery_dataset.history) == 0 && length(google_bigquery_table.history) == 0 &&
      length(google_bigquery_table_iam_member.pubsub_agent_history_writer) == 0 &&
      length(google_bigquery_dataset_iam_member.history_readers) == 0 &&
      length(google_pubsub_subscription.history) == 0 &&
      length(google_pubsub_subscription_iam_member.pubsub_agent_history_subscriber) == 0 &&
      length(google_pubsub_topic.history_dead_letter) == 0 &&
      length(google_pubsub_subscription.history_dead_letter) == 0 &&
      length(google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher) == 0 &&
      length(time_sleep.history_iam) == 0
    )
    error_message = "enable_history = false creates no dataset, table, subscription, dead-letter topic or grant."
  }
  assert {
    condition     = !contains(keys(google_project_service.enabled), "bigquery.googleapis.com")
    error_message = "Without the history the BigQuery API is not enabled."
  }
  assert {
    condition     = output.history_table == null && output.history_subscription == null && output.history_dead_letter_subscription == null
    error_message = "The history outputs are null."
  }
  assert {
    condition     = length(google_monitoring_alert_policy.history_stalled) == 0 && !contains(keys(output.alert_policies), "history_stalled")
    error_message = "No history, no alert on it."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].filter, "logging.googleapis.com/user/lp-importer-results")
    error_message = "The result alerts stay."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.dead_letters.conditions[0].condition_threshold[0].filter, "resource.labels.subscription_id=monitoring.regex.full_match(\"lp-importer-results-dead-letter\")")
    error_message = "The dead-letter alert watches the example subscription's dead letters only."
  }
}

# One apply of the same configuration checks 4 things (each was its own run;
# merged because every run starts the stub providers again, about 5 s each).
run "results_are_counted_by_status_from_the_publish_log_line" {
  # -- results_are_counted_by_status_from_the_publish_log_line
  assert {
    condition = google_logging_metric.results.filter == join("\n", [
      "resource.type=\"cloud_run_revision\"",
      "(resource.labels.service_name=\"lp-importer-ingest\" OR resource.labels.service_name=\"lp-importer-poller\")",
      "jsonPayload.step=\"publish\"",
    ])
    error_message = "The metric counts the functions' one log line per published result."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.name == "lp-importer-ingest" && google_cloudfunctions2_function.poller.name == "lp-importer-poller"
    error_message = "The service names in the filter are the functions' names."
  }
  assert {
    condition     = google_logging_metric.results.label_extractors["status"] == "EXTRACT(jsonPayload.status)" && one(google_logging_metric.results.metric_descriptor[0].labels).key == "status"
    error_message = "The status label is extracted from the line's status field."
  }
  assert {
    condition     = google_logging_metric.results.metric_descriptor[0].metric_kind == "DELTA" && google_logging_metric.results.metric_descriptor[0].value_type == "INT64"
    error_message = "A counter of log entries."
  }
  assert {
    condition     = output.results_metric == "logging.googleapis.com/user/lp-importer-results"
    error_message = "The metric's type is an output."
  }

  # -- failed_timed_out_and_rejected_results_alert
  assert {
    condition = google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].filter == join(" AND ", [
      "metric.type=\"logging.googleapis.com/user/lp-importer-results\"",
      "resource.type=\"cloud_run_revision\"",
      "metric.labels.status=monitoring.regex.full_match(\"FAILED|TIMED_OUT|REJECTED\")",
    ])
    error_message = "The policy watches the results metric for FAILED, TIMED_OUT and REJECTED only."
  }
  assert {
    condition = (
      google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].comparison == "COMPARISON_GT" &&
      google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].threshold_value == 0 &&
      google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].duration == "0s"
    )
    error_message = "One such result is enough, at once."
  }
  assert {
    condition     = google_monitoring_alert_policy.problem_results.conditions[0].condition_threshold[0].aggregations[0].group_by_fields == tolist(["metric.label.status"])
    error_message = "One incident per status."
  }
  assert {
    condition     = time_sleep.results_metric.triggers["metric"] == google_logging_metric.results.name
    error_message = "The policy waits for its new log-based metric."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.problem_results.documentation[0].content, "imports --state-bucket acme-importer-test-lp-importer-state list gs://acme-importer-test-lp-importer-landing/incoming/")
    error_message = "The documentation says how to find the files, with this deployment's buckets."
  }

  # -- dead_letter_backlogs_alert
  assert {
    condition = google_monitoring_alert_policy.dead_letters.conditions[0].condition_threshold[0].filter == join(" AND ", [
      "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
      "resource.type=\"pubsub_subscription\"",
      "resource.labels.subscription_id=monitoring.regex.full_match(\"lp-importer-results-dead-letter|lp-importer-history-dead-letter\")",
    ])
    error_message = "The policy watches the backlog of both dead-letter subscriptions."
  }
  assert {
    condition     = google_pubsub_subscription.dead_letter.name == "lp-importer-results-dead-letter" && google_pubsub_subscription.history_dead_letter[0].name == "lp-importer-history-dead-letter"
    error_message = "Those are the dead-letter subscriptions' names."
  }
  assert {
    condition     = google_monitoring_alert_policy.dead_letters.conditions[0].condition_threshold[0].comparison == "COMPARISON_GT" && google_monitoring_alert_policy.dead_letters.conditions[0].condition_threshold[0].threshold_value == 0
    error_message = "Any dead letter alerts."
  }
  assert {
    condition = google_monitoring_alert_policy.history_stalled[0].conditions[0].condition_threshold[0].filter == join(" AND ", [
      "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"",
      "resource.type=\"pubsub_subscription\"",
      "resource.labels.subscription_id=\"lp-importer-history\"",
    ]) && google_monitoring_alert_policy.history_stalled[0].conditions[0].condition_threshold[0].threshold_value == 3600
    error_message = "A history subscription that stops writing for an hour alerts."
  }

  # -- alerts_notify_nobody_unless_channels_are_given
  assert {
    condition = alltrue([
      for p in concat([google_monitoring_alert_policy.problem_results, google_monitoring_alert_policy.dead_letters], google_monitoring_alert_policy.history_stalled) :
      length(p.notification_channels) == 0 && p.combiner == "OR" && p.enabled != false
    ])
    error_message = "Without channels the policies exist, enabled, and notify nobody."
  }
  assert {
    condition     = keys(output.alert_policies) == ["dead_letters", "history_stalled", "problem_results"]
    error_message = "The three policies are outputs."
  }
}

run "alerts_notify_the_given_channels" {
  variables {
    alert_notification_channels = ["projects/acme-importer-test/notificationChannels/111", "projects/acme-importer-test/notificationChannels/222"]
  }
  assert {
    condition = alltrue([
      for p in concat([google_monitoring_alert_policy.problem_results, google_monitoring_alert_policy.dead_letters], google_monitoring_alert_policy.history_stalled) :
      p.notification_channels == tolist(["projects/acme-importer-test/notificationChannels/111", "projects/acme-importer-test/notificationChannels/222"])
    ])
    error_message = "Every policy notifies every given channel."
  }
}

run "a_channel_must_be_a_full_name" {
  command = plan
  variables {
    alert_notification_channels = ["ops@example.com"]
  }
  expect_failures = [var.alert_notification_channels]
}

run "a_public_history_reader_is_refused" {
  command = plan
  variables {
    history_reader_members = ["allAuthenticatedUsers"]
  }
  expect_failures = [var.history_reader_members]
}
