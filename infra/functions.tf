# ---------------------------------------------------------------------------------------------
# The two 2nd gen Cloud Functions. Their environment variables are exactly the ones the code
# reads: functions/settings.py SETTINGS, compared by tests/infra/test_terraform.py. Every
# setting, optional ones included, is set explicitly here from a variable or a resource, so a
# deployment never depends on a default hidden in the code. LEANPLUM_DEV_KEY and each app's
# LEANPLUM_DEV_KEY_<APP> come from Secret Manager.
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

    # The poller serves the poll tasks and the start tasks of queued files; once a queued file's
    # job started, it creates that file's poll task itself (TASKS_QUEUE, POLLER_URL: its own
    # URL, computed in main.tf since it cannot reference itself, TASKS_SERVICE_ACCOUNT).
    environment_variables = {
      LEANPLUM_APP_ID          = var.leanplum_app_id
      LEANPLUM_API_URL         = var.leanplum_api_url
      LEANPLUM_APP_ROUTES      = local.leanplum_app_routes_setting
      LEANPLUM_APP_IDS         = local.leanplum_app_ids_setting
      RESULTS_TOPIC            = google_pubsub_topic.results.id
      STATE_BUCKET             = google_storage_bucket.state.name
      TASKS_QUEUE              = google_cloud_tasks_queue.poll.id
      POLLER_URL               = local.poller_url
      TASKS_SERVICE_ACCOUNT    = google_service_account.tasks.email
      MAX_RUNNING_JOBS         = tostring(var.max_running_jobs)
      MAX_QUEUED_SECONDS       = tostring(var.max_queued_seconds)
      LEANPLUM_BUCKET          = local.leanplum_bucket_setting
      LEANPLUM_BUCKET_PREFIX   = var.leanplum_bucket_prefix
      LEANPLUM_BUCKET_CLEANUP  = tostring(var.leanplum_bucket_cleanup)
      POLL_FIRST_DELAY_SECONDS = tostring(var.poll_first_delay_seconds)
      POLL_DEADLINE_SECONDS    = tostring(var.poll_deadline_seconds)
      POLL_MAX_ATTEMPTS        = tostring(var.tasks_max_attempts)
      # A start attempt owns a queued file for as long as the poller may run on it (the lease
      # is written as an end time by its holder, so each function uses its own timeout).
      INGEST_LEASE_SECONDS = tostring(var.poller_timeout_seconds)
    }

    secret_environment_variables {
      key        = "LEANPLUM_DEV_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.leanplum_dev_key.secret_id
      version    = "latest"
    }

    # Each app's key (LEANPLUM_DEV_KEY_<APP>, functions/leanplum_apps.py key_variable).
    dynamic "secret_environment_variables" {
      for_each = var.leanplum_apps
      content {
        key        = "LEANPLUM_DEV_KEY_${upper(secret_environment_variables.key)}"
        project_id = var.project_id
        secret     = google_secret_manager_secret.leanplum_app_dev_key[secret_environment_variables.key].secret_id
        version    = "latest"
      }
    }
  }

  # The waits (waits.tf) follow the grants the first build and the first revision use.
  depends_on = [
    google_project_service.enabled,
    terraform_data.settings_checks,
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

    # POLLER_URL is the poller's deterministic Cloud Run (run.app) URL (main.tf): the tasks' URL
    # and their OIDC token's audience, the same in both functions. Cloud Run counts a Cloud
    # Tasks request as internal traffic (the poller's ingress) only when it calls a run.app URL
    # of the service, not the cloudfunctions.net address.
    environment_variables = {
      LEANPLUM_APP_ID          = var.leanplum_app_id
      LEANPLUM_API_URL         = var.leanplum_api_url
      LEANPLUM_APP_ROUTES      = local.leanplum_app_routes_setting
      LEANPLUM_APP_IDS         = local.leanplum_app_ids_setting
      RESULTS_TOPIC            = google_pubsub_topic.results.id
      STATE_BUCKET             = google_storage_bucket.state.name
      TASKS_QUEUE              = google_cloud_tasks_queue.poll.id
      POLLER_URL               = local.poller_url
      TASKS_SERVICE_ACCOUNT    = google_service_account.tasks.email
      START_QUEUE              = google_cloud_tasks_queue.start.id
      MAX_RUNNING_JOBS         = tostring(var.max_running_jobs)
      MAX_QUEUED_SECONDS       = tostring(var.max_queued_seconds)
      LEANPLUM_BUCKET          = local.leanplum_bucket_setting
      LEANPLUM_BUCKET_PREFIX   = var.leanplum_bucket_prefix
      LEANPLUM_BUCKET_CLEANUP  = tostring(var.leanplum_bucket_cleanup)
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

    # Each app's key (LEANPLUM_DEV_KEY_<APP>, functions/leanplum_apps.py key_variable).
    dynamic "secret_environment_variables" {
      for_each = var.leanplum_apps
      content {
        key        = "LEANPLUM_DEV_KEY_${upper(secret_environment_variables.key)}"
        project_id = var.project_id
        secret     = google_secret_manager_secret.leanplum_app_dev_key[secret_environment_variables.key].secret_id
        version    = "latest"
      }
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
    terraform_data.settings_checks,
    google_storage_bucket.landing,
    time_sleep.build_iam,
    time_sleep.runtime_iam,
    time_sleep.eventarc_iam,
    time_sleep.eventarc_agent,
  ]
}

# Cross-checks of the settings that the variables' own validations cannot make (each names
# another variable, or a bucket). functions/leanplum_apps.py would refuse the same routes at
# start-up; here they stop the plan instead, before either function (both depend on this) is
# planned.
resource "terraform_data" "settings_checks" {
  lifecycle {
    precondition {
      condition     = alltrue([for prefix in local.routed_prefixes : startswith(prefix, var.incoming_prefix)])
      error_message = "Every prefix of leanplum_apps and dry_run_prefixes must be under incoming_prefix (${var.incoming_prefix}): only uploads there are imported."
    }
    precondition {
      condition     = length(local.routed_prefixes) == length(distinct(local.routed_prefixes))
      error_message = "A prefix is routed twice (in leanplum_apps and dry_run_prefixes, or to two apps): each prefix goes to one app or to dry-run."
    }
    precondition {
      condition     = !local.leanplum_bucket_used || !contains([local.bucket_name, local.state_bucket_name], var.leanplum_bucket)
      error_message = "leanplum_bucket must be the bucket Leanplum provides, not the landing or the state bucket."
    }
  }
}

# POLLER_URL is computed (main.tf) before the poller exists; once it does, Cloud Run must serve
# it at that URL. The deterministic run.app URL exists when the service name allows it (here
# it always does: at most 28 characters plus the project number). The data source is read after
# the poller is deployed (it references it), so the check runs at the end of the apply; a failed
# check is a warning, not an error: the tasks would fail and be retried by their queues until
# the URL is served (infra/README.md, "The poller's URL").
check "poller_url" {
  data "google_cloud_run_v2_service" "poller" {
    project  = var.project_id
    location = google_cloudfunctions2_function.poller.location
    name     = google_cloudfunctions2_function.poller.name
  }

  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].uri == local.poller_url || try(contains(data.google_cloud_run_v2_service.poller.urls, local.poller_url), false)
    error_message = "The poller's Cloud Run service does not serve ${local.poller_url} (POLLER_URL of both functions): its URLs are ${jsonencode(try(data.google_cloud_run_v2_service.poller.urls, []))}. Poll and start tasks to it will fail."
  }
}
