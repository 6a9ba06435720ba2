# Input validation and the optional paths (existing bucket, Leanplum reader), offline with mocks.

mock_provider "google" {
  mock_data "google_storage_bucket" {
    defaults = {
      location                    = "US"
      uniform_bucket_level_access = true
    }
  }
}

mock_provider "archive" {}

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
