# Input validation and the optional paths (existing bucket, Leanplum reader), offline with mocks.
# Each refused input names what refuses it: a variable's validation, or a precondition where the
# check needs another variable (terraform_data.settings_checks, the queues', the state bucket's).

mock_provider "google" {
  mock_data "google_storage_bucket" {
    defaults = {
      location                    = "US"
      uniform_bucket_level_access = true
    }
  }
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
  # The poller's Cloud Run service serves the deterministic URL (check block poller_url).
  mock_data "google_cloud_run_v2_service" {
    defaults = {
      urls = ["https://lp-importer-poller-123456789012.us-central1.run.app"]
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
  leanplum_app_id = "app_test"
}

run "existing_bucket_is_used_as_is" {
  variables {
    create_bucket          = false
    bucket_name            = "leanplum-provided-bucket"
    leanplum_reader_member = "serviceAccount:reader@leanplum-prod.iam.gserviceaccount.com"
  }
  assert {
    condition     = length(google_storage_bucket.landing) == 0
    error_message = "No bucket is created when create_bucket is false."
  }
  assert {
    condition     = one([for f in google_cloudfunctions2_function.ingest.event_trigger[0].event_filters : f.value if f.attribute == "bucket"]) == "leanplum-provided-bucket"
    error_message = "The trigger must watch the existing bucket."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.event_trigger[0].trigger_region == "us"
    error_message = "The trigger must follow the existing bucket's location."
  }
  assert {
    condition     = google_storage_bucket_iam_member.leanplum_reader[0].bucket == google_storage_bucket.state.name && google_storage_bucket_iam_member.leanplum_reader[0].role == "roles/storage.objectViewer"
    error_message = "Leanplum's principal reads the state bucket (the parts), not the provided landing bucket."
  }
  assert {
    condition     = google_storage_bucket.state.location == "US"
    error_message = "The state bucket follows the existing landing bucket's location."
  }
  assert {
    condition = alltrue([
      for g in [
        google_storage_bucket_iam_member.ingest_landing_write, google_storage_bucket_iam_member.ingest_landing_read,
        google_storage_bucket_iam_member.poller_landing_read,
      ] : g.bucket == "leanplum-provided-bucket" && strcontains(g.condition[0].expression, "projects/_/buckets/leanplum-provided-bucket/objects/")
    ])
    error_message = "The functions' landing grants name the existing bucket."
  }
}

run "existing_bucket_must_use_uniform_access" {
  command = plan
  variables {
    create_bucket = false
    bucket_name   = "leanplum-acl-bucket"
  }
  override_data {
    target = data.google_storage_bucket.existing[0]
    values = {
      location                    = "US"
      uniform_bucket_level_access = false
    }
  }
  expect_failures = [data.google_storage_bucket.existing]
}

run "parts_must_outlast_the_retry_window" {
  command = plan
  variables {
    poll_deadline_seconds = 259200
    tasks_max_attempts    = 1000
    parts_retention_days  = 3
  }
  expect_failures = [google_storage_bucket.state]
}

run "secret_replica_locations_must_be_regions" {
  command = plan
  variables {
    secret_replica_locations = ["europe-west1", "europe-west1"]
  }
  expect_failures = [var.secret_replica_locations]
}

run "existing_bucket_needs_a_name" {
  command = plan
  variables {
    create_bucket = false
  }
  expect_failures = [data.google_storage_bucket.existing]
}

run "public_leanplum_reader_is_refused" {
  command = plan
  variables {
    leanplum_reader_member = "allUsers"
  }
  expect_failures = [var.leanplum_reader_member]
}

run "incoming_prefix_outside_the_reserved_prefix" {
  command = plan
  variables {
    incoming_prefix = "importer/incoming/"
  }
  expect_failures = [var.incoming_prefix]
}

run "retry_budget_must_cover_the_poll_deadline" {
  command = plan
  variables {
    tasks_max_attempts = 100
  }
  expect_failures = [google_cloud_tasks_queue.poll]
}

run "unbounded_retries_are_refused" {
  command = plan
  variables {
    tasks_max_attempts = -1
  }
  expect_failures = [var.tasks_max_attempts]
}

run "shorter_deadline_fits_fewer_attempts" {
  variables {
    poll_deadline_seconds = 3600
    tasks_max_attempts    = 12
  }
  assert {
    condition     = google_cloud_tasks_queue.poll.retry_config[0].max_attempts == 12 && google_cloud_tasks_queue.poll.retry_config[0].max_retry_duration == "7200s" && google_cloudfunctions2_function.poller.service_config[0].environment_variables["POLL_MAX_ATTEMPTS"] == "12"
    error_message = "max_attempts and max_retry_duration follow the variables."
  }
}

run "parts_must_outlast_waiting_and_polling" {
  # 3 days of waiting for a job slot + 25 h of polls do not fit in 4 days of parts.
  command = plan
  variables {
    parts_retention_days = 4
  }
  expect_failures = [google_storage_bucket.state]
}

run "parts_retention_follows_max_queued_seconds" {
  variables {
    max_queued_seconds   = 86400
    parts_retention_days = 3
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["MAX_QUEUED_SECONDS"] == "86400"
    error_message = "A day of waiting and 25 h of polls fit in 3 days of parts."
  }
}

run "max_running_jobs_must_be_positive" {
  command = plan
  variables {
    max_running_jobs = 0
  }
  expect_failures = [var.max_running_jobs]
}

run "max_queued_seconds_must_be_whole_seconds" {
  command = plan
  variables {
    max_queued_seconds = 10.5
  }
  expect_failures = [var.max_queued_seconds]
}

run "start_queue_backoff_must_be_ordered" {
  command = plan
  variables {
    start_queue_min_backoff_seconds = 120
    start_queue_max_backoff_seconds = 60
  }
  expect_failures = [google_cloud_tasks_queue.start]
}

run "start_queue_must_retry_before_the_queued_deadline" {
  command = plan
  variables {
    max_queued_seconds              = 60
    start_queue_max_backoff_seconds = 300
  }
  expect_failures = [google_cloud_tasks_queue.start]
}

run "leanplum_app_names_must_fit_an_environment_variable" {
  command = plan
  variables {
    leanplum_apps = {
      Prod = { app_id = "app_456", prefixes = ["incoming/prod/"] }
    }
  }
  expect_failures = [var.leanplum_apps]
}

run "leanplum_app_name_default_is_reserved" {
  command = plan
  variables {
    leanplum_apps = {
      default = { app_id = "app_456", prefixes = ["incoming/prod/"] }
    }
  }
  expect_failures = [var.leanplum_apps]
}

run "leanplum_app_id_must_not_break_the_list" {
  command = plan
  variables {
    leanplum_apps = {
      prod = { app_id = "app_456,dev=app_123", prefixes = ["incoming/prod/"] }
    }
  }
  expect_failures = [var.leanplum_apps]
}

run "a_prefix_is_routed_to_one_app_only" {
  command = plan
  variables {
    leanplum_apps = {
      dev  = { app_id = "app_123", prefixes = ["incoming/x/"] }
      prod = { app_id = "app_456", prefixes = ["incoming/x/"] }
    }
  }
  expect_failures = [var.leanplum_apps]
}

run "app_prefixes_must_be_under_the_incoming_prefix" {
  command = plan
  variables {
    leanplum_apps = {
      prod = { app_id = "app_456", prefixes = ["uploads/prod/"] }
    }
  }
  expect_failures = [terraform_data.settings_checks]
}

run "dry_run_prefixes_must_be_under_the_incoming_prefix" {
  command = plan
  variables {
    dry_run_prefixes = ["importer/check/"]
  }
  expect_failures = [terraform_data.settings_checks]
}

run "a_prefix_is_routed_to_an_app_or_to_dry_run_not_both" {
  command = plan
  variables {
    leanplum_apps = {
      prod = { app_id = "app_456", prefixes = ["incoming/prod/"] }
    }
    dry_run_prefixes = ["incoming/prod/"]
  }
  expect_failures = [terraform_data.settings_checks]
}

run "dry_run_prefixes_must_be_distinct" {
  command = plan
  variables {
    dry_run_prefixes = ["incoming/check/", "incoming/check/"]
  }
  expect_failures = [var.dry_run_prefixes]
}

run "leanplum_bucket_must_be_a_bucket_name" {
  command = plan
  variables {
    leanplum_bucket = "gs://leanplum-provided-imports"
  }
  expect_failures = [var.leanplum_bucket]
}

run "leanplum_bucket_none_means_not_used" {
  variables {
    leanplum_bucket = "none"
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["LEANPLUM_BUCKET"] == "none" && length(google_storage_bucket_iam_member.ingest_leanplum_write) == 0 && length(data.google_storage_bucket.leanplum) == 0
    error_message = "\"none\" is the code's spelling of no bucket: no grant, no read."
  }
}

run "leanplum_bucket_prefix_must_be_a_folder" {
  command = plan
  variables {
    leanplum_bucket        = "leanplum-provided-imports"
    leanplum_bucket_prefix = "/leanplum-importer"
  }
  expect_failures = [var.leanplum_bucket_prefix]
}

run "leanplum_bucket_is_not_the_state_bucket" {
  command = plan
  variables {
    leanplum_bucket = "acme-importer-test-lp-importer-state"
  }
  expect_failures = [terraform_data.settings_checks]
}

run "leanplum_bucket_is_not_the_landing_bucket" {
  command = plan
  variables {
    leanplum_bucket = "acme-importer-test-lp-importer-landing"
  }
  expect_failures = [terraform_data.settings_checks]
}

run "leanplum_bucket_iam_must_be_a_known_mode" {
  command = plan
  variables {
    leanplum_bucket     = "leanplum-provided-imports"
    leanplum_bucket_iam = "owner"
  }
  expect_failures = [var.leanplum_bucket_iam]
}

run "leanplum_bucket_must_use_uniform_access" {
  command = plan
  variables {
    leanplum_bucket = "leanplum-acl-bucket"
  }
  override_data {
    target = data.google_storage_bucket.leanplum[0]
    values = {
      location                    = "US"
      uniform_bucket_level_access = false
    }
  }
  expect_failures = [data.google_storage_bucket.leanplum]
}
