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
  description = "The poller's deterministic Cloud Run URL, https://<service>-<project number>.<region>.run.app: POLLER_URL of both functions, the URL and OIDC audience of the poll and start tasks; invocable by the tasks service account only. The check block poller_url warns if Cloud Run does not serve it."
  value       = local.poller_url
}

output "tasks_queue" {
  description = "Cloud Tasks queue of the polls (TASKS_QUEUE; projects/P/locations/L/queues/Q)."
  value       = google_cloud_tasks_queue.poll.id
}

output "start_queue" {
  description = "Cloud Tasks queue where files wait for a free Leanplum job slot (START_QUEUE; projects/P/locations/L/queues/Q)."
  value       = google_cloud_tasks_queue.start.id
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
  description = "Secret Manager secret to add the default app's Leanplum development key to, as a version."
  value       = google_secret_manager_secret.leanplum_dev_key.id
}

output "leanplum_app_dev_key_secrets" {
  description = "Secret Manager secret of each app of leanplum_apps, by app name: add that app's development key to it as a version (before the functions read it, see infra/README.md)."
  value       = { for app, secret in google_secret_manager_secret.leanplum_app_dev_key : app => secret.id }
}

output "leanplum_app_routes" {
  description = "LEANPLUM_APP_ROUTES and LEANPLUM_APP_IDS as given to both functions (\"none\": every upload goes to the default app)."
  value = {
    routes = local.leanplum_app_routes_setting
    ids    = local.leanplum_app_ids_setting
  }
}

output "leanplum_bucket_access" {
  description = "What the functions need on leanplum_bucket, per function: member, the exact permissions, the role Terraform granted or that the bucket's admins should grant (roles/storage.objectUser where this project's custom roles cannot be used), and the IAM condition. With leanplum_bucket_iam = \"external\", hand this to the bucket's admins (e.g. Leanplum's). null when no leanplum_bucket is set."
  value = local.leanplum_bucket_used ? {
    bucket          = var.leanplum_bucket
    granted_here    = local.leanplum_bucket_grants
    condition_title = "leanplum-importer-copies"
    condition       = local.leanplum_bucket_condition
    functions = {
      for function, account in { ingest = google_service_account.ingest, poller = google_service_account.poller } : function => {
        member                          = account.member
        permissions                     = local.leanplum_bucket_permissions[function]
        role                            = local.leanplum_bucket_roles[function]
      }
    }
  } : null
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
