# ---------------------------------------------------------------------------------------------
# Waits of a first apply. IAM is eventually consistent: Google documents that a grant
# "typically" takes effect within 2 minutes, "potentially 7 minutes or longer"; the Eventarc
# service agent of a fresh project is created on first use and Eventarc's own error says "it may
# take a few minutes before all necessary permissions are propagated to the Service Agent".
# Without these waits the first build, the first revision (secret access) or the trigger fail
# with permission errors that a second apply no longer shows.
#
# A time_sleep waits when it is created (or replaced, when a value in `triggers` changes), never
# on later applies. Each is placed between the grants it covers and the functions that use them
# (depends_on in functions.tf). Duration: var.propagation_wait_seconds.
# ---------------------------------------------------------------------------------------------

locals {
  propagation_wait = "${var.propagation_wait_seconds}s"
}

# The build service account's roles, used by each function's very first build: build logs,
# pushing the image, reading the source (the importer's bucket and Google's gcf-v2-sources-*).
resource "time_sleep" "build_iam" {
  create_duration = local.propagation_wait

  triggers = {
    build_account = google_service_account.build.member
    gcf_sources   = local.gcf_sources_bucket
  }

  depends_on = [
    google_project_iam_member.build_log_writer,
    google_artifact_registry_repository_iam_member.build_writer,
    google_storage_bucket_iam_member.build_source_reader,
    google_project_iam_member.build_gcf_sources_reader,
  ]
}

# Every grant of the functions' own identities: secret access is checked when a revision is
# deployed (each secret environment variable); the object, topic and queue grants are used as
# soon as the trigger delivers the first upload.
resource "time_sleep" "runtime_iam" {
  create_duration = local.propagation_wait

  triggers = {
    ingest_account = google_service_account.ingest.member
    poller_account = google_service_account.poller.member
    secret         = google_secret_manager_secret.leanplum_dev_key.id
    landing_bucket = local.bucket_name
    state_bucket   = google_storage_bucket.state.name
    # A new app's secret, or a new grant on Leanplum's bucket, waits again before the functions
    # are updated to read it.
    app_secrets     = join(",", sort(keys(var.leanplum_apps)))
    leanplum_bucket = local.leanplum_bucket_grants ? var.leanplum_bucket : ""
    start_queue     = google_cloud_tasks_queue.start.id
  }

  depends_on = [
    google_secret_manager_secret_iam_member.ingest_dev_key,
    google_secret_manager_secret_iam_member.poller_dev_key,
    google_secret_manager_secret_iam_member.ingest_app_dev_key,
    google_secret_manager_secret_iam_member.poller_app_dev_key,
    google_storage_bucket_iam_member.ingest_landing_write,
    google_storage_bucket_iam_member.ingest_landing_read,
    google_storage_bucket_iam_member.ingest_state_write,
    google_storage_bucket_iam_member.poller_landing_read,
    google_storage_bucket_iam_member.poller_state_write,
    google_storage_bucket_iam_member.poller_state_read,
    google_storage_bucket_iam_member.ingest_leanplum_write,
    google_storage_bucket_iam_member.poller_leanplum_write,
    google_pubsub_topic_iam_member.ingest_publisher,
    google_pubsub_topic_iam_member.poller_publisher,
    google_cloud_tasks_queue_iam_member.ingest_enqueuer,
    google_cloud_tasks_queue_iam_member.ingest_start_enqueuer,
    google_cloud_tasks_queue_iam_member.poller_enqueuer,
    google_service_account_iam_member.ingest_acts_as_tasks,
    google_service_account_iam_member.poller_acts_as_tasks,
  ]
}

# What the Cloud Storage trigger needs when Cloud Functions creates it: the trigger's service
# account receives events, the Cloud Storage service agent publishes the bucket's notifications.
resource "time_sleep" "eventarc_iam" {
  create_duration = local.propagation_wait

  triggers = {
    trigger_account = google_service_account.trigger.member
    storage_agent   = google_project_iam_member.gcs_agent_pubsub_publisher.member
  }

  depends_on = [
    google_project_iam_member.trigger_event_receiver,
    google_project_iam_member.gcs_agent_pubsub_publisher,
  ]
}

# The Eventarc service agent (service-<number>@gcp-sa-eventarc.iam.gserviceaccount.com) and its
# role appear after the API is enabled, lazily. Terraform's GA provider cannot create it
# (google_project_service_identity is google-beta only): the first-apply procedure in
# infra/README.md creates it with gcloud right after enabling the APIs, and this wait gives its
# role time to propagate before the trigger is validated.
resource "time_sleep" "eventarc_agent" {
  create_duration = local.propagation_wait

  triggers = {
    project = data.google_project.this.number
  }

  depends_on = [google_project_service.enabled]
}
