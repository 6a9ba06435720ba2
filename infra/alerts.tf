# ---------------------------------------------------------------------------------------------
# Alerts, sent to var.alert_notification_channels (none given: the policies exist, open
# incidents in Cloud Monitoring and notify nobody).
#
# - Results that need a person (FAILED, TIMED_OUT, REJECTED): a log-based metric. Every
#   published result already writes one structured line, {"step": "publish", "status": ...,
#   "bucket": ..., "object": ...} (functions/lifecycle.py publish_pending), so the metric counts
#   results by status with no new code and no consumer to run. Pub/Sub's own metrics cannot do
#   it: they count messages, never what a message says.
# - A dead-letter backlog: Pub/Sub's num_undelivered_messages on the dead-letter subscriptions
#   (the example subscription's and the history's): a message there is a result a consumer or
#   the history table refused.
# - History not written (history on): the age of the oldest unacknowledged message of the
#   BigQuery subscription. A table that is gone, unwritable or of another schema stops every
#   write without dead-lettering anything (the subscription's state leaves ACTIVE).
# ---------------------------------------------------------------------------------------------

locals {
  # Result statuses that need a person; the others (SUCCEEDED, PARTIAL, DUPLICATE, SUPERSEDED)
  # are counted by the same metric but alert nobody.
  alert_statuses = ["FAILED", "TIMED_OUT", "REJECTED"]

  # One log entry per published result, from either function (2nd gen functions log as their
  # Cloud Run service). Logging query language; the lines are ANDed.
  results_log_filter = join("\n", [
    "resource.type=\"cloud_run_revision\"",
    "(${join(" OR ", [for name in values(local.function_names) : "resource.labels.service_name=\"${name}\""])})",
    "jsonPayload.step=\"publish\"",
  ])

  dead_letter_subscriptions = concat(
    [google_pubsub_subscription.dead_letter.name],
    google_pubsub_subscription.history_dead_letter[*].name,
  )

  # The history's oldest unwritten message may be this old before the policy fires: above the
  # time a single refused message takes to be dead-lettered with the retry policy's backoff
  # (10 s doubling to 600 s, 10 attempts: about 40 minutes).
  history_max_delay_seconds = 3600

  how_to_look = join(" ", [
    "`python -m functions imports --state-bucket ${google_storage_bucket.state.name}",
    "list gs://${local.bucket_name}/${var.incoming_prefix} --since 1d`",
  ])
}

resource "google_logging_metric" "results" {
  project     = var.project_id
  name        = "${var.name_prefix}-results"
  description = "Result messages published by the Leanplum importer, by status (one structured log line per result)."
  filter      = local.results_log_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Leanplum import results"

    labels {
      key         = "status"
      value_type  = "STRING"
      description = "Result status: SUCCEEDED, PARTIAL, FAILED, REJECTED, TIMED_OUT, DUPLICATE or SUPERSEDED."
    }
  }

  label_extractors = {
    status = "EXTRACT(jsonPayload.status)"
  }

  depends_on = [google_project_service.enabled]
}

# Cloud Monitoring answers "Cannot find metric(s) ... it could take up to 10 minutes to become
# available" to a policy created right after its log-based metric: the policy waits (once, when
# the metric is created). Should it still come too soon, `terraform apply` again.
resource "time_sleep" "results_metric" {
  create_duration = local.propagation_wait

  triggers = {
    metric = google_logging_metric.results.name
  }

  depends_on = [google_logging_metric.results]
}

resource "google_monitoring_alert_policy" "problem_results" {
  project      = var.project_id
  display_name = "${var.name_prefix}: imports FAILED, TIMED_OUT or REJECTED"
  combiner     = "OR"
  severity     = "ERROR"
  user_labels  = local.labels

  notification_channels = var.alert_notification_channels

  conditions {
    display_name = "A result with status FAILED, TIMED_OUT or REJECTED"

    condition_threshold {
      filter = join(" AND ", [
        "metric.type=\"logging.googleapis.com/user/${google_logging_metric.results.name}\"",
        "resource.type=\"cloud_run_revision\"",
        "metric.labels.status=monitoring.regex.full_match(\"${join("|", local.alert_statuses)}\")",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      # One incident per status: a FAILED file while a REJECTED one is open notifies again.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.status"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    # A count of past events: with no new one the incident closes after 30 minutes.
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Leanplum import: $${metric.label.status}"
    content   = <<-EOT
      At least one file's import ended **$${metric.label.status}** in the last 5 minutes.

      - Which files and why: Logs Explorer, `jsonPayload.step="publish" jsonPayload.status="$${metric.label.status}"`
        (each entry names `bucket`, `object`, `generation` and `reason`), or ${local.how_to_look}.
      - REJECTED: the file was refused as a whole; its report lists the rows and reasons.
        FAILED or TIMED_OUT: see `imports show` and `imports retry` (infra/README.md, "Alerts").
    EOT
  }

  depends_on = [time_sleep.results_metric]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "${var.name_prefix}: result messages dead-lettered"
  combiner     = "OR"
  severity     = "WARNING"
  user_labels  = local.labels

  notification_channels = var.alert_notification_channels

  conditions {
    display_name = "Messages waiting in a dead-letter subscription"

    condition_threshold {
      filter = join(" AND ", [
        "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
        "resource.type=\"pubsub_subscription\"",
        "resource.labels.subscription_id=monitoring.regex.full_match(\"${join("|", local.dead_letter_subscriptions)}\")",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.subscription_id"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Leanplum import: dead letters in $${resource.label.subscription_id}"
    content   = <<-EOT
      Result messages wait in **$${resource.label.subscription_id}**: a consumer refused them
      ${var.dead_letter_max_delivery_attempts} times (the example subscription) or the history table
      refused them (the history subscription: a message with a field the table lacks, or a
      value of another type). Pull them with `gcloud pubsub subscriptions pull`, fix the cause,
      publish them again to the results topic, then acknowledge them (infra/README.md, "Alerts").
    EOT
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "history_stalled" {
  count = var.enable_history ? 1 : 0

  project      = var.project_id
  display_name = "${var.name_prefix}: import history not written"
  combiner     = "OR"
  severity     = "WARNING"
  user_labels  = local.labels

  notification_channels = var.alert_notification_channels

  conditions {
    display_name = "The BigQuery subscription's oldest message is over ${local.history_max_delay_seconds} s old"

    condition_threshold {
      filter = join(" AND ", [
        "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"",
        "resource.type=\"pubsub_subscription\"",
        "resource.labels.subscription_id=\"${google_pubsub_subscription.history[0].name}\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = local.history_max_delay_seconds
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Leanplum import: history table not written"
    content   = <<-EOT
      The BigQuery subscription ${google_pubsub_subscription.history[0].name} has not written
      a result for over ${local.history_max_delay_seconds} s. Its state says why
      (`gcloud pubsub subscriptions describe ${google_pubsub_subscription.history[0].name} --format='value(bigqueryConfig.state)'`):
      PERMISSION_DENIED (the Pub/Sub service agent lost roles/bigquery.dataEditor on the table),
      NOT_FOUND (the table is gone) or SCHEMA_MISMATCH (the table's schema changed). Messages
      stay in the subscription for message_retention_duration: fix it before then.
    EOT
  }

  depends_on = [google_project_service.enabled]
}
