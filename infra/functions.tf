# ---------------------------------------------------------------------------------------------
# The two 2nd gen Cloud Functions. Their environment variables are exactly the ones the code
# reads: functions/config.py SETTINGS, compared by tests/infra/test_terraform.py. Every setting,
# optional ones included, is set explicitly here from a variable or a resource, so a deployment
# never depends on a default hidden in the code. LEANPLUM_DEV_KEY comes from Secret Manager.
# ---------------------------------------------------------------------------------------------

resource "google_artifact_registry_repository" "functions" {
  # checkov:skip=CKV_GCP_84: images hold only the public function code; Google-managed encryption is enough (see infra/README.md).
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Images of the Leanplum importer's functions, built by Cloud Build."
  format        = "DOCKER"
  labels        = local.labels

  # Apply the cleanup policies below (the API's default is a dry run that deletes nothing).
  cleanup_policy_dry_run = false

  # Keep the images of the last few deployments only.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloudfunctions2_function" "poller" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.poller
  description = "Polls a Leanplum import job; called by Cloud Tasks with an OIDC token."
  labels      = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "poll_import"
    docker_repository = google_artifact_registry_repository.functions.id
    service_account   = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.poller.email
    ingress_settings               = var.poller_ingress
    all_traffic_on_latest_revision = true
    available_memory               = var.poller_memory
    timeout_seconds                = var.poller_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = var.poller_max_instances

    environment_variables = {
      LEANPLUM_APP_ID       = var.leanplum_app_id
      LEANPLUM_API_URL      = var.leanplum_api_url
      RESULTS_TOPIC         = google_pubsub_topic.results.id
      STATE_BUCKET          = google_storage_bucket.state.name
      POLL_DEADLINE_SECONDS = tostring(var.poll_deadline_seconds)
      POLL_MAX_ATTEMPTS     = tostring(var.tasks_max_attempts)
    }

    secret_environment_variables {
      key        = "LEANPLUM_DEV_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.leanplum_dev_key.secret_id
      version    = "latest"
    }
  }

  # The waits (waits.tf) follow the grants the first build and the first revision use.
  depends_on = [
    google_project_service.enabled,
    time_sleep.build_iam,
    time_sleep.runtime_iam,
  ]
}

resource "google_cloudfunctions2_function" "ingest" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.ingest
  description = "Imports a CSV file of historical events into Leanplum when it lands in the bucket."
  labels      = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "on_csv_finalized"
    docker_repository = google_artifact_registry_repository.functions.id
    service_account   = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.ingest.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = var.ingest_memory
    timeout_seconds                = var.ingest_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = var.ingest_max_instances

    # POLLER_URL is the poller's Cloud Run (run.app) URI: the tasks' URL and their OIDC token's
    # audience. Cloud Run counts a Cloud Tasks request as internal traffic (the poller's
    # ingress) only when it calls the service's default run.app URL, not the cloudfunctions.net
    # address.
    environment_variables = {
      LEANPLUM_APP_ID          = var.leanplum_app_id
      LEANPLUM_API_URL         = var.leanplum_api_url
      RESULTS_TOPIC            = google_pubsub_topic.results.id
      STATE_BUCKET             = google_storage_bucket.state.name
      TASKS_QUEUE              = google_cloud_tasks_queue.poll.id
      POLLER_URL               = google_cloudfunctions2_function.poller.service_config[0].uri
      TASKS_SERVICE_ACCOUNT    = google_service_account.tasks.email
      INCOMING_PREFIX          = var.incoming_prefix
      OLD_EVENT_POLICY         = var.old_event_policy
      MAX_FUTURE_SECONDS       = tostring(var.max_future_seconds)
      MAX_REJECTED_FRACTION    = tostring(var.max_rejected_fraction)
      MAX_DECOMPRESSED_BYTES   = tostring(var.max_decompressed_bytes)
      MAX_COMPRESSION_RATIO    = tostring(var.max_compression_ratio)
      MIN_EVENT_TIME           = var.min_event_time
      NAIVE_TIME_ZONE          = var.naive_time_zone
      DUPLICATE_ROWS           = var.duplicate_rows
      COLUMN_MAP               = var.column_map
      DROP_COLUMNS             = var.drop_columns
      DUPLICATE_POLICY         = var.duplicate_policy
      POLL_FIRST_DELAY_SECONDS = tostring(var.poll_first_delay_seconds)
      # One delivery owns a file for as long as the function may run on it.
      INGEST_LEASE_SECONDS = tostring(var.ingest_timeout_seconds)
    }

    secret_environment_variables {
      key        = "LEANPLUM_DEV_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.leanplum_dev_key.secret_id
      version    = "latest"
    }
  }

  event_trigger {
    trigger_region        = local.trigger_region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email

    event_filters {
      attribute = "bucket"
      value     = local.bucket_name
    }
  }

  # The waits (waits.tf) follow the grants the first build, the first revision and the trigger
  # use, and the Eventarc service agent's first appearance.
  depends_on = [
    google_project_service.enabled,
    google_storage_bucket.landing,
    time_sleep.build_iam,
    time_sleep.runtime_iam,
    time_sleep.eventarc_iam,
    time_sleep.eventarc_agent,
  ]
}
