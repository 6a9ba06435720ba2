output "bucket_name" {
  description = "Landing bucket: upload CSV files under incoming_prefix."
  value       = local.bucket_name
}

output "state_bucket_name" {
  description = "Private state bucket (STATE_BUCKET): import records and claims, archived originals, reports, and the files Leanplum reads under importer/parts/."
  value       = google_storage_bucket.state.name
}

output "state_bucket_url" {
  description = "gs:// URL of the state bucket."
  value       = google_storage_bucket.state.url
}

output "incoming_prefix" {
  description = "Prefix under which uploads are imported."
  value       = var.incoming_prefix
}

output "upload_url_prefix" {
  description = "gs:// URL prefix to copy CSV files to."
  value       = "gs://${local.bucket_name}/${var.incoming_prefix}"
}

output "ingest_function" {
  description = "Full name of the ingest function."
  value       = google_cloudfunctions2_function.ingest.id
}

output "poller_function" {
  description = "Full name of the poller function."
  value       = google_cloudfunctions2_function.poller.id
}

output "poller_url" {
  description = "The poller's Cloud Run (run.app) URI: the tasks' URL and OIDC audience (POLLER_URL); invocable by the tasks service account only."
  value       = google_cloudfunctions2_function.poller.service_config[0].uri
}

output "tasks_queue" {
  description = "Cloud Tasks queue of the poller (projects/P/locations/L/queues/Q)."
  value       = google_cloud_tasks_queue.poll.id
}

output "results_topic" {
  description = "Topic of the result messages (projects/P/topics/T)."
  value       = google_pubsub_topic.results.id
}

output "results_example_subscription" {
  description = "Example subscription of the results topic, with its dead-letter policy."
  value       = google_pubsub_subscription.results_example.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic of the example subscription."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Subscription that keeps dead-lettered result messages."
  value       = google_pubsub_subscription.dead_letter.id
}

output "leanplum_dev_key_secret" {
  description = "Secret Manager secret to add the Leanplum development key to, as a version."
  value       = google_secret_manager_secret.leanplum_dev_key.id
}

output "service_accounts" {
  description = "E-mail of each service account, by role."
  value = {
    ingest  = google_service_account.ingest.email
    poller  = google_service_account.poller.email
    tasks   = google_service_account.tasks.email
    trigger = google_service_account.trigger.email
    build   = google_service_account.build.email
  }
}

output "poll_retry_window_seconds" {
  description = "Seconds from a task's first attempt to its last one under the queue's retry_config (at least poll_deadline_seconds)."
  value       = local.tasks_last_attempt_after_seconds
}

output "history_table" {
  description = "The history table as PROJECT.DATASET.TABLE (for `bq query`), or null when enable_history is false."
  value       = var.enable_history ? "${google_bigquery_table.history[0].project}.${google_bigquery_table.history[0].dataset_id}.${google_bigquery_table.history[0].table_id}" : null
}

output "history_subscription" {
  description = "BigQuery subscription that writes every result message into the history table, or null."
  value       = var.enable_history ? google_pubsub_subscription.history[0].id : null
}

output "history_dead_letter_subscription" {
  description = "Subscription that keeps the result messages the history table refused, or null."
  value       = var.enable_history ? google_pubsub_subscription.history_dead_letter[0].id : null
}

output "results_metric" {
  description = "Log-based metric counting published results by status (label status)."
  value       = "logging.googleapis.com/user/${google_logging_metric.results.name}"
}

output "alert_policies" {
  description = "Alert policies by purpose (full names)."
  value = merge(
    {
      problem_results = google_monitoring_alert_policy.problem_results.name
      dead_letters    = google_monitoring_alert_policy.dead_letters.name
    },
    var.enable_history ? { history_stalled = google_monitoring_alert_policy.history_stalled[0].name } : {},
  )
}
