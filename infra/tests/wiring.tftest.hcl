# Wiring of infra/, checked offline against mocked providers: `terraform test` (Terraform >= 1.7).
# Nothing here reaches Google; computed attributes (ids, e-mails, URLs) get mocked values.

mock_provider "google" {
  # Distinct, recognisable addresses for the two URLs of a 2nd gen function: the legacy
  # cloudfunctions.net `url` and the Cloud Run `service_config[0].uri` (run.app).
  mock_resource "google_cloudfunctions2_function" {
    defaults = {
      url = "https://europe-west1-acme-importer-test.cloudfunctions.net/mocked"
      service_config = {
        uri = "https://mocked-abcdefghij-ew.a.run.app"
      }
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
  # The poller's Cloud Run service as the check block poller_url reads it: Cloud Run reports
  # the hash-based URL and the deterministic one.
  mock_data "google_cloud_run_v2_service" {
    defaults = {
      urls = ["https://mocked-abcdefghij-ew.a.run.app", "https://lp-importer-poller-123456789012.europe-west1.run.app"]
    }
  }
  # Leanplum's bucket, when a run sets leanplum_bucket (read before Terraform grants on it).
  mock_data "google_storage_bucket" {
    defaults = {
      location                    = "EU"
      uniform_bucket_level_access = true
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

# One apply of the same configuration checks 12 things (each was its own run;
# merged because every run starts the stub providers again, about 5 s each).
run "ingest_is_triggered_by_finalized_objects_of_the_bucket_with_retries" {
  # -- ingest_is_triggered_by_finalized_objects_of_the_bucket_with_retries
  assert {
    condition     = google_cloudfunctions2_function.ingest.event_trigger[0].event_type == "google.cloud.storage.object.v1.finalized"
    error_message = "The ingest function must be triggered by google.cloud.storage.object.v1.finalized."
  }
  assert {
    condition = anytrue([
      for f in google_cloudfunctions2_function.ingest.event_trigger[0].event_filters :
      f.attribute == "bucket" && f.value == google_storage_bucket.landing[0].name
    ])
    error_message = "The ingest trigger must filter on the landing bucket."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.event_trigger[0].retry_policy == "RETRY_POLICY_RETRY"
    error_message = "The ingest trigger must retry failed deliveries."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.event_trigger[0].trigger_region == "europe-west1"
    error_message = "The trigger must sit in the bucket's location."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.event_trigger[0].service_account_email == google_service_account.trigger.email
    error_message = "The trigger must deliver events as its own service account."
  }
  assert {
    condition     = google_cloud_run_service_iam_member.ingest_invoker.member == "serviceAccount:${google_service_account.trigger.email}" || google_cloud_run_service_iam_member.ingest_invoker.member == google_service_account.trigger.member
    error_message = "Only the trigger's service account may invoke the ingest function."
  }
  assert {
    condition     = google_project_iam_member.trigger_event_receiver.role == "roles/eventarc.eventReceiver" && google_project_iam_member.trigger_event_receiver.member == google_service_account.trigger.member
    error_message = "The trigger's service account needs roles/eventarc.eventReceiver."
  }
  assert {
    condition     = google_project_iam_member.gcs_agent_pubsub_publisher.role == "roles/pubsub.publisher" && google_project_iam_member.gcs_agent_pubsub_publisher.member == "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    error_message = "The Cloud Storage service agent needs roles/pubsub.publisher for Eventarc."
  }

  # -- functions_build_from_the_hashed_source_archive
  assert {
    condition     = google_cloudfunctions2_function.ingest.build_config[0].entry_point == "on_csv_finalized" && google_cloudfunctions2_function.poller.build_config[0].entry_point == "poll_import"
    error_message = "Entry points must be on_csv_finalized (ingest) and poll_import (poller)."
  }
  assert {
    condition     = startswith(google_cloudfunctions2_function.ingest.build_config[0].runtime, "python3")
    error_message = "The functions run on a Python 3 runtime."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.function_source.name
    ])
    error_message = "Both functions must build from the uploaded source archive."
  }
  assert {
    condition     = google_storage_bucket_object.function_source.name == "function-source/${data.archive_file.function_source.output_sha256}.zip"
    error_message = "The source object must be named by the archive's hash, so that new code redeploys."
  }
  assert {
    condition     = local.source_files == toset(concat(["main.py", "requirements.txt"], [for f in local.source_files : f if startswith(f, "functions/")]))
    error_message = "The archive holds main.py, requirements.txt and functions/ only."
  }
  assert {
    condition     = contains(local.source_files, "functions/config.py") && !anytrue([for f in local.source_files : strcontains(f, "__pycache__")])
    error_message = "The archive holds the functions package, without __pycache__."
  }

  # -- one_service_account_per_function_and_poller_invoked_by_tasks_only
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].service_account_email == google_service_account.ingest.email
    error_message = "The ingest function must run as its own service account."
  }
  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].service_account_email == google_service_account.poller.email
    error_message = "The poller must run as its own service account."
  }
  assert {
    condition = length(distinct([
      google_service_account.ingest.account_id, google_service_account.poller.account_id,
      google_service_account.tasks.account_id, google_service_account.trigger.account_id,
      google_service_account.build.account_id,
    ])) == 5
    error_message = "Ingest, poller, tasks, trigger and build service accounts must be distinct."
  }
  assert {
    condition     = google_cloud_run_service_iam_member.poller_invoker.role == "roles/run.invoker" && google_cloud_run_service_iam_member.poller_invoker.member == google_service_account.tasks.member && google_cloud_run_service_iam_member.poller_invoker.service == google_cloudfunctions2_function.poller.name
    error_message = "Only the tasks service account may invoke the poller."
  }
  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].ingress_settings == "ALLOW_INTERNAL_ONLY" && google_cloudfunctions2_function.ingest.service_config[0].ingress_settings == "ALLOW_INTERNAL_ONLY"
    error_message = "Both functions take internal traffic only (Cloud Tasks and Eventarc of the project)."
  }
  assert {
    condition     = google_service_account_iam_member.ingest_acts_as_tasks.service_account_id == google_service_account.tasks.name && google_service_account_iam_member.ingest_acts_as_tasks.role == "roles/iam.serviceAccountUser" && google_service_account_iam_member.ingest_acts_as_tasks.member == google_service_account.ingest.member
    error_message = "The ingest service account may act as the tasks service account only."
  }
  assert {
    condition     = google_cloud_tasks_queue_iam_member.ingest_enqueuer.name == google_cloud_tasks_queue.poll.name && google_cloud_tasks_queue_iam_member.ingest_enqueuer.role == "roles/cloudtasks.enqueuer"
    error_message = "The ingest service account enqueues on the poll queue only."
  }
  assert {
    condition = alltrue([
      for m in [google_pubsub_topic_iam_member.ingest_publisher, google_pubsub_topic_iam_member.poller_publisher] :
      m.topic == google_pubsub_topic.results.name && m.role == "roles/pubsub.publisher"
    ])
    error_message = "Both functions publish to the results topic only."
  }
  assert {
    condition = alltrue([
      for m in [google_secret_manager_secret_iam_member.ingest_dev_key, google_secret_manager_secret_iam_member.poller_dev_key] :
      m.secret_id == google_secret_manager_secret.leanplum_dev_key.secret_id && m.role == "roles/secretmanager.secretAccessor"
    ])
    error_message = "Both functions read the one Leanplum key secret only."
  }

  # -- secret_is_an_environment_variable_from_secret_manager
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      length(f.service_config[0].secret_environment_variables) == 1 &&
      f.service_config[0].secret_environment_variables[0].key == "LEANPLUM_DEV_KEY" &&
      f.service_config[0].secret_environment_variables[0].secret == google_secret_manager_secret.leanplum_dev_key.secret_id &&
      !contains(keys(f.service_config[0].environment_variables), "LEANPLUM_DEV_KEY")
    ])
    error_message = "LEANPLUM_DEV_KEY must come from Secret Manager, never as a plain variable."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      length(setintersection(keys(f.service_config[0].environment_variables), ["STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST"])) == 0
    ])
    error_message = "Emulator variables are local only."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["TASKS_SERVICE_ACCOUNT"] == google_service_account.tasks.email && google_cloudfunctions2_function.ingest.service_config[0].environment_variables["TASKS_QUEUE"] == google_cloud_tasks_queue.poll.id
    error_message = "The ingest function must be told the tasks identity and the queue."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["STATE_BUCKET"] == google_storage_bucket.state.name
    ])
    error_message = "Both functions are told the state bucket (STATE_BUCKET)."
  }

  # -- queue_has_a_bounded_retry_budget_matching_the_poller
  assert {
    condition     = google_cloud_tasks_queue.poll.retry_config[0].max_attempts == 160 && google_cloudfunctions2_function.poller.service_config[0].environment_variables["POLL_MAX_ATTEMPTS"] == "160"
    error_message = "The queue's max_attempts is bounded and passed to the poller as POLL_MAX_ATTEMPTS."
  }
  assert {
    condition     = google_cloud_tasks_queue.poll.retry_config[0].min_backoff == "15s" && google_cloud_tasks_queue.poll.retry_config[0].max_backoff == "600s" && google_cloud_tasks_queue.poll.retry_config[0].max_doublings == 6
    error_message = "Unexpected backoff: 15 s doubling up to 600 s."
  }
  assert {
    condition     = google_cloud_tasks_queue.poll.retry_config[0].max_retry_duration == "90000s" && google_cloudfunctions2_function.poller.service_config[0].environment_variables["POLL_DEADLINE_SECONDS"] == "86400"
    error_message = "max_retry_duration must sit a little above POLL_DEADLINE_SECONDS."
  }
  assert {
    # 15+30+60+120+240+480 s, then 600 s: the 160th attempt comes 92745 s after the first.
    condition     = local.tasks_last_attempt_after_seconds == 92745 && output.poll_retry_window_seconds >= 86400
    error_message = "The retry schedule must cover the 24 h poll deadline."
  }
  assert {
    condition     = google_cloud_tasks_queue.poll.rate_limits[0].max_dispatches_per_second == 5 && google_cloud_tasks_queue.poll.rate_limits[0].max_concurrent_dispatches == 10
    error_message = "The queue must be rate limited."
  }

  # -- results_subscription_dead_letters
  assert {
    condition     = google_pubsub_subscription.results_example.topic == google_pubsub_topic.results.id
    error_message = "The example subscription reads the results topic."
  }
  assert {
    condition     = try(google_pubsub_subscription.results_example.dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.dead_letter.id && google_pubsub_subscription.results_example.dead_letter_policy[0].max_delivery_attempts == 10, false)
    error_message = "The example subscription must dead-letter to the dead-letter topic after 10 attempts."
  }
  assert {
    condition     = google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher.topic == google_pubsub_topic.dead_letter.name && google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    error_message = "The Pub/Sub service agent must publish to the dead-letter topic."
  }
  assert {
    condition     = google_pubsub_subscription_iam_member.pubsub_agent_results_subscriber.subscription == google_pubsub_subscription.results_example.name && google_pubsub_subscription_iam_member.pubsub_agent_results_subscriber.role == "roles/pubsub.subscriber"
    error_message = "The Pub/Sub service agent must subscribe to the dead-lettering subscription."
  }
  assert {
    condition     = google_pubsub_subscription.dead_letter.topic == google_pubsub_topic.dead_letter.id
    error_message = "Dead letters must be kept by a subscription."
  }

  # -- landing_bucket_holds_uploads_only_and_keeps_replaced_versions_a_week
  assert {
    condition     = google_storage_bucket.landing[0].uniform_bucket_level_access == true && google_storage_bucket.landing[0].public_access_prevention == "enforced"
    error_message = "The landing bucket must use uniform access and enforce public access prevention."
  }
  assert {
    condition     = google_storage_bucket.landing[0].versioning[0].enabled == true && google_storage_bucket.landing[0].soft_delete_policy[0].retention_duration_seconds == 604800
    error_message = "Uploads replaced by their rewrite stay recoverable (versioning, 7 days of soft delete)."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      one(r.action).type == "Delete" && one(r.condition).days_since_noncurrent_time == 7 && one(r.condition).with_state == "ARCHIVED"
    ])
    error_message = "Noncurrent versions of uploads are deleted after noncurrent_version_retention_days."
  }
  assert {
    condition = alltrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      length(flatten([for c in r.condition : coalesce(c.matches_prefix, [])])) == 0 && (one(r.action).type != "Delete" || one(r.condition).with_state == "ARCHIVED")
    ])
    error_message = "No rule on the landing bucket deletes a live object or names an importer prefix: the importer's objects live in the state bucket."
  }
  assert {
    condition     = google_storage_bucket.source.uniform_bucket_level_access == true && google_storage_bucket.source.public_access_prevention == "enforced"
    error_message = "The source bucket must be private too."
  }
  assert {
    condition     = google_storage_bucket.source.force_destroy == true
    error_message = "terraform destroy must be able to empty the versioned source bucket."
  }

  # -- state_bucket_is_private_unversioned_and_beside_the_landing_bucket
  assert {
    condition     = google_storage_bucket.state.name == "acme-importer-test-lp-importer-state" && google_storage_bucket.state.name != google_storage_bucket.landing[0].name
    error_message = "The state bucket is a second bucket, <project>-<prefix>-state."
  }
  assert {
    condition     = google_storage_bucket.state.uniform_bucket_level_access == true && google_storage_bucket.state.public_access_prevention == "enforced"
    error_message = "The state bucket must use uniform access and enforce public access prevention."
  }
  assert {
    condition     = google_storage_bucket.state.location == google_storage_bucket.landing[0].location && google_storage_bucket.state.location == "EUROPE-WEST1"
    error_message = "The state bucket sits in the landing bucket's location."
  }
  assert {
    condition     = google_storage_bucket.state.versioning[0].enabled == false && google_storage_bucket.state.soft_delete_policy[0].retention_duration_seconds == 0
    error_message = "The state bucket is unversioned with soft delete off: a lifecycle Delete really deletes."
  }
  assert {
    condition     = google_storage_bucket.state.labels["app"] == "leanplum-importer" && google_storage_bucket.state.labels["managed-by"] == "terraform"
    error_message = "The state bucket carries the importer's labels."
  }
  assert {
    condition     = output.state_bucket_name == google_storage_bucket.state.name && output.state_bucket_url == google_storage_bucket.state.url
    error_message = "The state bucket is an output."
  }

  # -- state_bucket_expires_archive_reports_and_parts_and_keeps_records
  assert {
    condition = anytrue([
      for r in google_storage_bucket.state.lifecycle_rule :
      one(r.action).type == "Delete" && one(r.condition).matches_prefix == tolist(["importer/archive/"]) && one(r.condition).age == 30
    ])
    error_message = "Archived originals are deleted after archive_retention_days (30)."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.state.lifecycle_rule :
      one(r.action).type == "Delete" && one(r.condition).matches_prefix == tolist(["importer/reports/"]) && one(r.condition).age == 90
    ])
    error_message = "Reports are deleted after reports_retention_days (90)."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.state.lifecycle_rule :
      one(r.action).type == "Delete" && one(r.condition).matches_prefix == tolist(["importer/parts/"]) && one(r.condition).age == 7
    ])
    error_message = "The files Leanplum reads are deleted after parts_retention_days (7)."
  }
  assert {
    condition     = length(google_storage_bucket.state.lifecycle_rule) == 3
    error_message = "Exactly the three prefix rules: nothing else expires in the state bucket."
  }
  assert {
    condition = !anytrue([
      for r in google_storage_bucket.state.lifecycle_rule :
      contains(flatten([for c in r.condition : coalesce(c.matches_prefix, [])]), "importer/records/") || length(flatten([for c in r.condition : coalesce(c.matches_prefix, [])])) == 0
    ])
    error_message = "Import records and claims are kept, and no rule applies to the whole state bucket."
  }

  # -- object_grants_are_the_access_table_on_both_buckets
  # functions/access.py ACCESS, rendered: tests/infra/test_terraform.py compares the HCL with the
  # table itself; this run proves what the conditions evaluate to.
  assert {
    condition = (
      google_storage_bucket_iam_member.ingest_landing_write.bucket == "acme-importer-test-lp-importer-landing" &&
      google_storage_bucket_iam_member.ingest_landing_write.role == "roles/storage.objectUser" &&
      google_storage_bucket_iam_member.ingest_landing_write.member == google_service_account.ingest.member &&
      google_storage_bucket_iam_member.ingest_landing_write.condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-landing/objects/incoming/\")"
    )
    error_message = "ingest: read-write on the uploads (landing, incoming/) only."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.ingest_landing_read.bucket == "acme-importer-test-lp-importer-landing" &&
      google_storage_bucket_iam_member.ingest_landing_read.role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.ingest_landing_read.condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-landing/objects/importer/records/\")"
    )
    error_message = "ingest: read-only on old records left in the landing bucket."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.poller_landing_read.bucket == "acme-importer-test-lp-importer-landing" &&
      google_storage_bucket_iam_member.poller_landing_read.role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.poller_landing_read.member == google_service_account.poller.member &&
      google_storage_bucket_iam_member.poller_landing_read.condition[0].expression == join(" || ", [
        "resource.type == \"storage.googleapis.com/Bucket\"",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-landing/objects/incoming/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-landing/objects/importer/records/\")",
      ])
    )
    error_message = "poller: read-only on the uploads (a queued file's generation) and on old records left in the landing bucket."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.ingest_state_write.bucket == google_storage_bucket.state.name &&
      google_storage_bucket_iam_member.ingest_state_write.role == "roles/storage.objectUser" &&
      google_storage_bucket_iam_member.ingest_state_write.member == google_service_account.ingest.member &&
      google_storage_bucket_iam_member.ingest_state_write.condition[0].expression == join(" || ", [
        "resource.type == \"storage.googleapis.com/Bucket\"",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/records/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/archive/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/reports/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/parts/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/slots/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/waiting/\")",
      ])
    )
    error_message = "ingest: read-write on records, archive, reports, parts, job slots and waiting list of the state bucket."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.poller_state_write.bucket == google_storage_bucket.state.name &&
      google_storage_bucket_iam_member.poller_state_write.role == "roles/storage.objectUser" &&
      google_storage_bucket_iam_member.poller_state_write.member == google_service_account.poller.member &&
      google_storage_bucket_iam_member.poller_state_write.condition[0].expression == join(" || ", [
        "resource.type == \"storage.googleapis.com/Bucket\"",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/records/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/reports/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/slots/\")",
        "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/waiting/\")",
      ])
    )
    error_message = "poller: read-write on records, reports, job slots and waiting list of the state bucket."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.poller_state_read.bucket == google_storage_bucket.state.name &&
      google_storage_bucket_iam_member.poller_state_read.role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.poller_state_read.member == google_service_account.poller.member &&
      google_storage_bucket_iam_member.poller_state_read.condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/parts/\")"
    )
    error_message = "poller: read-only on the parts Leanplum read (the join)."
  }

  # -- build_reads_googles_copy_of_the_source_only
  assert {
    condition = (
      google_project_iam_member.build_gcf_sources_reader.role == "roles/storage.objectViewer" &&
      google_project_iam_member.build_gcf_sources_reader.member == google_service_account.build.member &&
      google_project_iam_member.build_gcf_sources_reader.condition[0].expression == "resource.name == \"projects/_/buckets/gcf-v2-sources-123456789012-europe-west1\" || resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-123456789012-europe-west1/objects/\")"
    )
    error_message = "The build reads gcf-v2-sources-<project number>-<region> and nothing else in the project."
  }
  assert {
    condition     = google_storage_bucket_iam_member.build_source_reader.bucket == google_storage_bucket.source.name && google_storage_bucket_iam_member.build_source_reader.role == "roles/storage.objectViewer"
    error_message = "The build reads the importer's source bucket."
  }
  assert {
    condition     = google_artifact_registry_repository.functions.cleanup_policy_dry_run == false
    error_message = "The repository's cleanup policies must really delete (no dry run)."
  }

  # -- first_apply_waits_for_iam_and_the_eventarc_agent
  # What the functions wait for (depends_on) is checked by tests/infra/test_terraform.py.
  assert {
    condition = alltrue([
      for w in [time_sleep.build_iam, time_sleep.runtime_iam, time_sleep.eventarc_iam, time_sleep.eventarc_agent] :
      w.create_duration == "180s"
    ])
    error_message = "Each wait lasts propagation_wait_seconds (180 s) when it is created."
  }
  assert {
    condition     = time_sleep.build_iam.triggers["build_account"] == google_service_account.build.member && time_sleep.build_iam.triggers["gcf_sources"] == "gcf-v2-sources-123456789012-europe-west1"
    error_message = "A new build identity waits again."
  }
  assert {
    condition     = time_sleep.runtime_iam.triggers["ingest_account"] == google_service_account.ingest.member && time_sleep.runtime_iam.triggers["poller_account"] == google_service_account.poller.member && time_sleep.runtime_iam.triggers["state_bucket"] == google_storage_bucket.state.name
    error_message = "New runtime identities or buckets wait again."
  }
  assert {
    condition     = time_sleep.eventarc_iam.triggers["trigger_account"] == google_service_account.trigger.member && time_sleep.eventarc_iam.triggers["storage_agent"] == "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    error_message = "A new trigger identity waits again."
  }
  assert {
    condition     = contains(keys(google_project_service.enabled), "eventarc.googleapis.com") && contains(keys(google_project_service.enabled), "cloudresourcemanager.googleapis.com")
    error_message = "Eventarc and Cloud Resource Manager (project IAM grants) are enabled."
  }
}

run "waits_follow_propagation_wait_seconds" {
  variables {
    propagation_wait_seconds = 420
  }
  assert {
    condition = alltrue([
      for w in [time_sleep.build_iam, time_sleep.runtime_iam, time_sleep.eventarc_iam, time_sleep.eventarc_agent] :
      w.create_duration == "420s"
    ])
    error_message = "propagation_wait_seconds sets every wait."
  }
}

run "tasks_call_the_poller_at_its_deterministic_run_app_url" {
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["POLLER_URL"] == "https://lp-importer-poller-123456789012.europe-west1.run.app"
    ])
    error_message = "POLLER_URL of both functions (the tasks' URL and OIDC audience) is https://<poller service>-<project number>.<region>.run.app."
  }
  assert {
    condition     = local.poller_url == "https://${google_cloudfunctions2_function.poller.name}-${data.google_project.this.number}.${google_cloudfunctions2_function.poller.location}.run.app"
    error_message = "The URL is built from the poller's own name, the project number and its region."
  }
  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].environment_variables["POLLER_URL"] != google_cloudfunctions2_function.poller.url
    error_message = "Not the cloudfunctions.net address: Cloud Tasks counts as internal traffic only on a run.app URL."
  }
  assert {
    condition     = output.poller_url == local.poller_url
    error_message = "The poller_url output is the same URL."
  }
  assert {
    condition     = google_cloud_run_service_iam_member.poller_invoker.service == local.function_names.poller && google_cloud_run_service_iam_member.poller_invoker.member == google_service_account.tasks.member
    error_message = "The tasks service account's one invoker grant on the poller serves poll and start tasks alike (same URL, same audience)."
  }
}

run "poller_url_check_fails_when_cloud_run_serves_another_url" {
  override_data {
    target = data.google_cloud_run_v2_service.poller
    values = {
      urls = ["https://mocked-abcdefghij-ew.a.run.app"]
    }
  }
  expect_failures = [check.poller_url]
}

run "secret_replication_is_automatic_by_default" {
  assert {
    condition     = length(google_secret_manager_secret.leanplum_dev_key.replication[0].auto) == 1 && length(google_secret_manager_secret.leanplum_dev_key.replication[0].user_managed) == 0
    error_message = "Without secret_replica_locations the secret is replicated automatically."
  }
}

run "secret_replication_can_be_user_managed" {
  variables {
    secret_replica_locations = ["europe-west1", "europe-west4"]
  }
  assert {
    condition     = length(google_secret_manager_secret.leanplum_dev_key.replication[0].auto) == 0 && [for r in google_secret_manager_secret.leanplum_dev_key.replication[0].user_managed[0].replicas : r.location] == ["europe-west1", "europe-west4"]
    error_message = "secret_replica_locations gives user-managed replicas in those regions only."
  }
}

run "no_public_members" {
  assert {
    condition = alltrue([
      for m in [
        google_storage_bucket_iam_member.ingest_landing_write.member,
        google_storage_bucket_iam_member.ingest_landing_read.member,
        google_storage_bucket_iam_member.ingest_state_write.member,
        google_storage_bucket_iam_member.poller_landing_read.member,
        google_storage_bucket_iam_member.poller_state_write.member,
        google_storage_bucket_iam_member.poller_state_read.member,
        google_storage_bucket_iam_member.build_source_reader.member,
        google_project_iam_member.build_gcf_sources_reader.member,
        google_pubsub_topic_iam_member.ingest_publisher.member,
        google_pubsub_topic_iam_member.poller_publisher.member,
        google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher.member,
        google_pubsub_subscription_iam_member.pubsub_agent_results_subscriber.member,
        google_secret_manager_secret_iam_member.ingest_dev_key.member,
        google_secret_manager_secret_iam_member.poller_dev_key.member,
        google_cloud_tasks_queue_iam_member.ingest_enqueuer.member,
        google_cloud_tasks_queue_iam_member.ingest_start_enqueuer.member,
        google_cloud_tasks_queue_iam_member.poller_enqueuer.member,
        google_service_account_iam_member.ingest_acts_as_tasks.member,
        google_service_account_iam_member.poller_acts_as_tasks.member,
        google_cloud_run_service_iam_member.poller_invoker.member,
        google_cloud_run_service_iam_member.ingest_invoker.member,
        google_project_iam_member.gcs_agent_pubsub_publisher.member,
        google_project_iam_member.trigger_event_receiver.member,
        google_project_iam_member.build_log_writer.member,
        google_artifact_registry_repository_iam_member.build_writer.member,
      ] : !contains(["allUsers", "allAuthenticatedUsers"], m)
    ])
    error_message = "No IAM grant may name allUsers or allAuthenticatedUsers."
  }
  assert {
    condition = alltrue([
      for r in [
        google_project_iam_member.gcs_agent_pubsub_publisher.role,
        google_project_iam_member.trigger_event_receiver.role,
        google_project_iam_member.build_log_writer.role,
        google_project_iam_member.build_gcf_sources_reader.role,
      ] : !contains(["roles/owner", "roles/editor", "roles/viewer"], r)
    ])
    error_message = "No basic roles."
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.leanplum_reader) == 0
    error_message = "Leanplum gets no access unless leanplum_reader_member is set."
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.uploaders) == 0
    error_message = "No uploader is granted anything unless uploader_members is set."
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.ingest_leanplum_write) == 0 && length(google_storage_bucket_iam_member.poller_leanplum_write) == 0 && length(google_project_iam_custom_role.leanplum_copy) == 0 && length(google_project_iam_custom_role.leanplum_cleanup) == 0
    error_message = "No grant on a Leanplum bucket, and no custom role, unless leanplum_bucket is set."
  }
}

run "uploaders_reach_the_incoming_prefix_only" {
  variables {
    uploader_members = ["group:growth@example.com", "serviceAccount:exporter@acme-importer-test.iam.gserviceaccount.com"]
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.uploaders) == 2
    error_message = "Each uploader gets one grant."
  }
  assert {
    condition = alltrue([
      for g in google_storage_bucket_iam_member.uploaders :
      g.bucket == google_storage_bucket.landing[0].name && g.role == "roles/storage.objectUser" &&
      g.condition[0].expression == "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-landing/objects/incoming/\")"
    ])
    error_message = "Uploaders must be conditioned to the incoming prefix of the landing bucket."
  }
  assert {
    condition     = !anytrue([for g in google_storage_bucket_iam_member.uploaders : g.bucket == google_storage_bucket.state.name || strcontains(g.condition[0].expression, google_storage_bucket.state.name)])
    error_message = "Uploaders get nothing on the state bucket."
  }
}

run "leanplum_reads_the_parts_of_the_state_bucket_only" {
  variables {
    leanplum_reader_member = "serviceAccount:reader@leanplum-prod.iam.gserviceaccount.com"
    uploader_members       = ["group:growth@example.com"]
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.leanplum_reader[0].bucket == google_storage_bucket.state.name &&
      google_storage_bucket_iam_member.leanplum_reader[0].role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.leanplum_reader[0].member == "serviceAccount:reader@leanplum-prod.iam.gserviceaccount.com"
    )
    error_message = "Leanplum's principal reads objects of the state bucket (where multi's gcsBucket points)."
  }
  assert {
    condition     = google_storage_bucket_iam_member.leanplum_reader[0].condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/acme-importer-test-lp-importer-state/objects/importer/parts/\")"
    error_message = "Leanplum's read is conditioned to importer/parts/ only (no records, archive, reports, no listing)."
  }
  assert {
    condition     = !anytrue([for g in google_storage_bucket_iam_member.uploaders : g.bucket == google_storage_bucket.state.name])
    error_message = "Uploaders still get nothing on the state bucket."
  }
}

# ---------------------------------------------------------------------------------------------
# The start queue: files wait there for a free Leanplum job slot (START_QUEUE).
# ---------------------------------------------------------------------------------------------

run "start_queue_paces_waiting_files_with_unlimited_retries" {
  assert {
    condition     = google_cloud_tasks_queue.start.name == "lp-importer-start" && google_cloud_tasks_queue.start.name != google_cloud_tasks_queue.poll.name && google_cloud_tasks_queue.start.location == "europe-west1"
    error_message = "The start queue is a second queue, <name_prefix>-start, beside the poll queue."
  }
  assert {
    condition     = google_cloud_tasks_queue.start.retry_config[0].max_attempts == -1
    error_message = "A waiting file is retried without limit: the code ends it after max_queued_seconds."
  }
  assert {
    condition     = google_cloud_tasks_queue.start.retry_config[0].min_backoff == "5s" && google_cloud_tasks_queue.start.retry_config[0].max_backoff == "60s" && google_cloud_tasks_queue.start.retry_config[0].max_doublings == 3
    error_message = "A waiting file tries again after 5 s, doubling three times up to every 60 s."
  }
  assert {
    condition     = google_cloud_tasks_queue.start.rate_limits[0].max_dispatches_per_second == 5 && google_cloud_tasks_queue.start.rate_limits[0].max_concurrent_dispatches == 10
    error_message = "The start queue is rate limited (5/s, 10 at once)."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["START_QUEUE"] == google_cloud_tasks_queue.start.id && output.start_queue == google_cloud_tasks_queue.start.id
    error_message = "START_QUEUE of the ingest function is the start queue's id."
  }
  assert {
    condition     = !contains(keys(google_cloudfunctions2_function.poller.service_config[0].environment_variables), "START_QUEUE")
    error_message = "The poller does not read START_QUEUE (functions/settings.py)."
  }
  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].environment_variables["INGEST_LEASE_SECONDS"] == "300" && google_cloudfunctions2_function.ingest.service_config[0].environment_variables["INGEST_LEASE_SECONDS"] == "540"
    error_message = "A start attempt's lease is the poller's timeout, a delivery's the ingest function's."
  }
  assert {
    condition     = google_cloud_tasks_queue.poll.retry_config[0].max_attempts == 160
    error_message = "The poll queue keeps its bounded retry budget."
  }
}

run "start_queue_follows_its_variables" {
  variables {
    start_queue_min_backoff_seconds       = 2
    start_queue_max_backoff_seconds       = 30
    start_queue_max_doublings             = 1
    start_queue_max_dispatches_per_second = 1
    start_queue_max_concurrent_dispatches = 3
  }
  assert {
    condition = (
      google_cloud_tasks_queue.start.retry_config[0].min_backoff == "2s" &&
      google_cloud_tasks_queue.start.retry_config[0].max_backoff == "30s" &&
      google_cloud_tasks_queue.start.retry_config[0].max_doublings == 1 &&
      google_cloud_tasks_queue.start.rate_limits[0].max_dispatches_per_second == 1 &&
      google_cloud_tasks_queue.start.rate_limits[0].max_concurrent_dispatches == 3 &&
      google_cloud_tasks_queue.start.retry_config[0].max_attempts == -1
    )
    error_message = "The start queue's backoff and rate limits follow the start_queue_* variables."
  }
}

# One apply of the same configuration checks 2 things (each was its own run;
# merged because every run starts the stub providers again, about 5 s each).
run "functions_enqueue_on_the_queues_they_use_as_the_tasks_identity" {
  # -- functions_enqueue_on_the_queues_they_use_as_the_tasks_identity
  assert {
    condition = (
      google_cloud_tasks_queue_iam_member.ingest_start_enqueuer.name == google_cloud_tasks_queue.start.name &&
      google_cloud_tasks_queue_iam_member.ingest_start_enqueuer.location == google_cloud_tasks_queue.start.location &&
      google_cloud_tasks_queue_iam_member.ingest_start_enqueuer.role == "roles/cloudtasks.enqueuer" &&
      google_cloud_tasks_queue_iam_member.ingest_start_enqueuer.member == google_service_account.ingest.member
    )
    error_message = "The ingest service account enqueues start tasks on the start queue."
  }
  assert {
    condition = alltrue([
      for g in [google_cloud_tasks_queue_iam_member.ingest_enqueuer, google_cloud_tasks_queue_iam_member.poller_enqueuer] :
      g.name == google_cloud_tasks_queue.poll.name && g.role == "roles/cloudtasks.enqueuer"
    ]) && google_cloud_tasks_queue_iam_member.poller_enqueuer.member == google_service_account.poller.member
    error_message = "Both functions enqueue poll tasks on the poll queue."
  }
  assert {
    condition     = google_cloud_tasks_queue_iam_member.poller_enqueuer.name != google_cloud_tasks_queue.start.name
    error_message = "The poller does not enqueue on the start queue (it serves start tasks, it does not create them)."
  }
  assert {
    condition = alltrue([
      for g in [google_service_account_iam_member.ingest_acts_as_tasks, google_service_account_iam_member.poller_acts_as_tasks] :
      g.service_account_id == google_service_account.tasks.name && g.role == "roles/iam.serviceAccountUser"
    ]) && google_service_account_iam_member.poller_acts_as_tasks.member == google_service_account.poller.member
    error_message = "Both functions may act as the tasks service account, and as nothing else."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["TASKS_QUEUE"] == google_cloud_tasks_queue.poll.id &&
      f.service_config[0].environment_variables["TASKS_SERVICE_ACCOUNT"] == google_service_account.tasks.email &&
      f.service_config[0].environment_variables["POLL_FIRST_DELAY_SECONDS"] == "15"
    ])
    error_message = "Both functions create poll tasks: both get TASKS_QUEUE, TASKS_SERVICE_ACCOUNT and POLL_FIRST_DELAY_SECONDS."
  }

  # -- job_slot_and_leanplum_settings_default_to_the_codes_defaults
  # ---------------------------------------------------------------------------------------------
  # The settings both functions share, at their defaults (the code's defaults).
  # ---------------------------------------------------------------------------------------------
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["MAX_RUNNING_JOBS"] == "5" &&
      f.service_config[0].environment_variables["MAX_QUEUED_SECONDS"] == "259200" &&
      f.service_config[0].environment_variables["LEANPLUM_BUCKET"] == "none" &&
      f.service_config[0].environment_variables["LEANPLUM_BUCKET_PREFIX"] == "leanplum-importer/" &&
      f.service_config[0].environment_variables["LEANPLUM_BUCKET_CLEANUP"] == "true" &&
      f.service_config[0].environment_variables["LEANPLUM_APP_ROUTES"] == "none" &&
      f.service_config[0].environment_variables["LEANPLUM_APP_IDS"] == "none"
    ])
    error_message = "Both functions get MAX_RUNNING_JOBS, MAX_QUEUED_SECONDS, LEANPLUM_BUCKET*, LEANPLUM_APP_ROUTES and LEANPLUM_APP_IDS at the code's defaults."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      length(f.service_config[0].secret_environment_variables) == 1
    ]) && length(google_secret_manager_secret.leanplum_app_dev_key) == 0 && output.leanplum_app_dev_key_secrets == {}
    error_message = "Without leanplum_apps, only the default app's key and secret exist."
  }
  assert {
    condition     = output.leanplum_bucket_access == null
    error_message = "No hand-over for a Leanplum bucket that is not set."
  }
}

run "job_slot_settings_follow_the_variables" {
  variables {
    max_running_jobs        = 2
    max_queued_seconds      = 86400
    leanplum_bucket_cleanup = false
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["MAX_RUNNING_JOBS"] == "2" &&
      f.service_config[0].environment_variables["MAX_QUEUED_SECONDS"] == "86400" &&
      f.service_config[0].environment_variables["LEANPLUM_BUCKET_CLEANUP"] == "false"
    ])
    error_message = "MAX_RUNNING_JOBS, MAX_QUEUED_SECONDS and LEANPLUM_BUCKET_CLEANUP follow their variables, in both functions."
  }
}

# ---------------------------------------------------------------------------------------------
# Live state in the state bucket: the job slots and the waiting list.
# ---------------------------------------------------------------------------------------------

run "slots_and_waiting_are_live_state_without_a_lifecycle_rule" {
  assert {
    condition = !anytrue([
      for r in google_storage_bucket.state.lifecycle_rule :
      anytrue([for p in flatten([for c in r.condition : coalesce(c.matches_prefix, [])]) : startswith(p, "importer/slots/") || startswith(p, "importer/waiting/") || startswith("importer/slots/", p) || startswith("importer/waiting/", p)])
    ])
    error_message = "No lifecycle rule may delete a job slot or a waiting-list entry."
  }
  assert {
    condition     = local.slots_prefix == "importer/slots/" && local.waiting_prefix == "importer/waiting/"
    error_message = "The reserved prefixes of functions/settings.py."
  }
  assert {
    condition = alltrue([
      for g in [google_storage_bucket_iam_member.ingest_state_write, google_storage_bucket_iam_member.poller_state_write] :
      strcontains(g.condition[0].expression, "objects/importer/slots/") && strcontains(g.condition[0].expression, "objects/importer/waiting/") && g.role == "roles/storage.objectUser"
    ])
    error_message = "Both functions read and write the job slots and the waiting list."
  }
}

# ---------------------------------------------------------------------------------------------
# The bucket Leanplum reads (LEANPLUM_BUCKET).
# ---------------------------------------------------------------------------------------------

run "leanplum_bucket_gets_exact_custom_roles_conditioned_to_the_prefix" {
  variables {
    leanplum_bucket = "leanplum-provided-imports"
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["LEANPLUM_BUCKET"] == "leanplum-provided-imports" &&
      f.service_config[0].environment_variables["LEANPLUM_BUCKET_PREFIX"] == "leanplum-importer/"
    ])
    error_message = "Both functions are told the bucket and its prefix."
  }
  assert {
    condition = (
      google_project_iam_custom_role.leanplum_copy[0].role_id == "lp_importer_leanplum_copy" &&
      toset(google_project_iam_custom_role.leanplum_copy[0].permissions) == toset(["storage.objects.create", "storage.objects.get", "storage.objects.delete"]) &&
      google_project_iam_custom_role.leanplum_cleanup[0].role_id == "lp_importer_leanplum_cleanup" &&
      toset(google_project_iam_custom_role.leanplum_cleanup[0].permissions) == toset(["storage.objects.delete"])
    )
    error_message = "The ingest function's role: create, get (preconditions), delete; the poller's: delete. Nothing else (no list, no update, no bucket permission)."
  }
  assert {
    condition = (
      google_storage_bucket_iam_member.ingest_leanplum_write[0].bucket == "leanplum-provided-imports" &&
      google_storage_bucket_iam_member.ingest_leanplum_write[0].role == google_project_iam_custom_role.leanplum_copy[0].id &&
      google_storage_bucket_iam_member.ingest_leanplum_write[0].member == google_service_account.ingest.member &&
      google_storage_bucket_iam_member.poller_leanplum_write[0].bucket == "leanplum-provided-imports" &&
      google_storage_bucket_iam_member.poller_leanplum_write[0].role == google_project_iam_custom_role.leanplum_cleanup[0].id &&
      google_storage_bucket_iam_member.poller_leanplum_write[0].member == google_service_account.poller.member
    )
    error_message = "Each function gets its own role on Leanplum's bucket only."
  }
  assert {
    condition = alltrue([
      for g in [google_storage_bucket_iam_member.ingest_leanplum_write[0], google_storage_bucket_iam_member.poller_leanplum_write[0]] :
      g.condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/leanplum-provided-imports/objects/leanplum-importer/\")"
    ])
    error_message = "Both grants are conditioned to the importer's prefix, with no bucket-level clause (no listing of Leanplum's objects)."
  }
  assert {
    condition = (
      output.leanplum_bucket_access.granted_here == true &&
      output.leanplum_bucket_access.functions.ingest.member == google_service_account.ingest.member &&
      output.leanplum_bucket_access.functions.poller.permissions == ["storage.objects.delete"] &&
      output.leanplum_bucket_access.condition == google_storage_bucket_iam_member.ingest_leanplum_write[0].condition[0].expression
    )
    error_message = "The leanplum_bucket_access output describes the grants made."
  }
  assert {
    condition     = time_sleep.runtime_iam.triggers["leanplum_bucket"] == "leanplum-provided-imports"
    error_message = "A new grant on Leanplum's bucket waits for propagation before the functions use it."
  }
  assert {
    condition     = length(google_storage_bucket.landing) == 1 && google_storage_bucket.landing[0].public_access_prevention == "enforced" && length(google_storage_bucket_iam_member.leanplum_reader) == 0
    error_message = "Leanplum's bucket changes nothing on the landing bucket (still private) and grants Leanplum nothing by itself."
  }
}

run "leanplum_bucket_can_use_the_predefined_object_user_role" {
  variables {
    leanplum_bucket        = "leanplum-provided-imports"
    leanplum_bucket_prefix = "acme/imports/"
    leanplum_bucket_iam    = "predefined_role"
  }
  assert {
    condition = alltrue([
      for g in [google_storage_bucket_iam_member.ingest_leanplum_write[0], google_storage_bucket_iam_member.poller_leanplum_write[0]] :
      g.role == "roles/storage.objectUser" &&
      g.condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/leanplum-provided-imports/objects/acme/imports/\")"
    ])
    error_message = "predefined_role: roles/storage.objectUser (objectCreator lacks delete), conditioned to leanplum_bucket_prefix."
  }
  assert {
    condition     = length(google_project_iam_custom_role.leanplum_copy) == 0 && length(google_project_iam_custom_role.leanplum_cleanup) == 0
    error_message = "No custom role is created when it is not used."
  }
  assert {
    condition     = google_cloudfunctions2_function.poller.service_config[0].environment_variables["LEANPLUM_BUCKET_PREFIX"] == "acme/imports/"
    error_message = "LEANPLUM_BUCKET_PREFIX follows leanplum_bucket_prefix."
  }
}

run "leanplum_bucket_grants_can_be_left_to_its_admins" {
  variables {
    leanplum_bucket     = "leanplum-provided-imports"
    leanplum_bucket_iam = "external"
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.ingest_leanplum_write) == 0 && length(google_storage_bucket_iam_member.poller_leanplum_write) == 0 && length(data.google_storage_bucket.leanplum) == 0 && length(google_project_iam_custom_role.leanplum_copy) == 0
    error_message = "external: Terraform neither reads nor grants anything on Leanplum's bucket."
  }
  assert {
    condition = (
      output.leanplum_bucket_access.granted_here == false &&
      output.leanplum_bucket_access.bucket == "leanplum-provided-imports" &&
      output.leanplum_bucket_access.functions.ingest.member == google_service_account.ingest.member &&
      output.leanplum_bucket_access.functions.poller.member == google_service_account.poller.member &&
      output.leanplum_bucket_access.functions.ingest.role == "roles/storage.objectUser" &&
      toset(output.leanplum_bucket_access.functions.ingest.permissions) == toset(["storage.objects.create", "storage.objects.get", "storage.objects.delete"]) &&
      output.leanplum_bucket_access.condition == "resource.name.startsWith(\"projects/_/buckets/leanplum-provided-imports/objects/leanplum-importer/\")"
    )
    error_message = "The output hands the bucket's admins the members, permissions, role and condition to grant."
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["LEANPLUM_BUCKET"] == "leanplum-provided-imports"
    error_message = "The functions still use the bucket."
  }
}

# ---------------------------------------------------------------------------------------------
# Leanplum apps: routes, ids and one key secret per app.
# ---------------------------------------------------------------------------------------------

run "leanplum_apps_get_one_secret_each_read_by_both_functions" {
  variables {
    leanplum_apps = {
      dev  = { app_id = "app_123", prefixes = ["incoming/dev/"] }
      prod = { app_id = "app_456", prefixes = ["incoming/prod/", "incoming/live/"] }
    }
    dry_run_prefixes = ["incoming/check/"]
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["LEANPLUM_APP_ROUTES"] == "incoming/dev/=dev,incoming/prod/=prod,incoming/live/=prod,incoming/check/=dry-run" &&
      f.service_config[0].environment_variables["LEANPLUM_APP_IDS"] == "dev=app_123,prod=app_456" &&
      f.service_config[0].environment_variables["LEANPLUM_APP_ID"] == "app_test"
    ])
    error_message = "Both functions get the routes (dry-run prefixes as prefix=dry-run) and the app ids, beside the default app."
  }
  assert {
    condition = (
      toset(keys(google_secret_manager_secret.leanplum_app_dev_key)) == toset(["dev", "prod"]) &&
      google_secret_manager_secret.leanplum_app_dev_key["prod"].secret_id == "lp-importer-leanplum-dev-key-prod" &&
      length(google_secret_manager_secret.leanplum_app_dev_key["prod"].replication[0].auto) == 1
    )
    error_message = "One secret per app, <name_prefix>-leanplum-dev-key-<app>, replicated like the default key."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      { for s in f.service_config[0].secret_environment_variables : s.key => s.secret } == {
        LEANPLUM_DEV_KEY      = google_secret_manager_secret.leanplum_dev_key.secret_id
        LEANPLUM_DEV_KEY_DEV  = google_secret_manager_secret.leanplum_app_dev_key["dev"].secret_id
        LEANPLUM_DEV_KEY_PROD = google_secret_manager_secret.leanplum_app_dev_key["prod"].secret_id
      } &&
      alltrue([for s in f.service_config[0].secret_environment_variables : s.version == "latest" && s.project_id == "acme-importer-test"])
    ])
    error_message = "Each app's key reaches both functions as LEANPLUM_DEV_KEY_<APP>, from its own secret, never as a plain variable."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      length([for k in keys(f.service_config[0].environment_variables) : k if startswith(k, "LEANPLUM_DEV_KEY")]) == 0
    ])
    error_message = "No key is a plain environment variable."
  }
  assert {
    condition = alltrue([
      for app in ["dev", "prod"] :
      google_secret_manager_secret_iam_member.ingest_app_dev_key[app].secret_id == google_secret_manager_secret.leanplum_app_dev_key[app].secret_id &&
      google_secret_manager_secret_iam_member.ingest_app_dev_key[app].member == google_service_account.ingest.member &&
      google_secret_manager_secret_iam_member.ingest_app_dev_key[app].role == "roles/secretmanager.secretAccessor" &&
      google_secret_manager_secret_iam_member.poller_app_dev_key[app].secret_id == google_secret_manager_secret.leanplum_app_dev_key[app].secret_id &&
      google_secret_manager_secret_iam_member.poller_app_dev_key[app].member == google_service_account.poller.member &&
      google_secret_manager_secret_iam_member.poller_app_dev_key[app].role == "roles/secretmanager.secretAccessor"
    ]) && length(google_secret_manager_secret_iam_member.ingest_app_dev_key) == 2 && length(google_secret_manager_secret_iam_member.poller_app_dev_key) == 2
    error_message = "Each function may read exactly the secrets it reads: the default key and every app's key."
  }
  assert {
    condition     = time_sleep.runtime_iam.triggers["app_secrets"] == "dev,prod"
    error_message = "A new app's secret grant waits for propagation before the functions read it."
  }
  assert {
    condition     = output.leanplum_app_dev_key_secrets["dev"] == google_secret_manager_secret.leanplum_app_dev_key["dev"].id && output.leanplum_app_routes.ids == "dev=app_123,prod=app_456"
    error_message = "The outputs name each app's secret and the routing."
  }
}

run "leanplum_app_secrets_follow_the_replica_locations" {
  variables {
    leanplum_apps = {
      prod = { app_id = "app_456", prefixes = [] }
    }
    secret_replica_locations = ["europe-west1", "europe-west4"]
  }
  assert {
    condition     = length(google_secret_manager_secret.leanplum_app_dev_key["prod"].replication[0].auto) == 0 && [for r in google_secret_manager_secret.leanplum_app_dev_key["prod"].replication[0].user_managed[0].replicas : r.location] == ["europe-west1", "europe-west4"]
    error_message = "An app's secret is replicated like the default key."
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["LEANPLUM_APP_ROUTES"] == "none" &&
      f.service_config[0].environment_variables["LEANPLUM_APP_IDS"] == "prod=app_456"
    ])
    error_message = "An app without prefixes is known (its id and key) but routed nothing."
  }
}

run "dry_run_prefixes_alone_route_without_any_app" {
  variables {
    dry_run_prefixes = ["incoming/check/"]
  }
  assert {
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["LEANPLUM_APP_ROUTES"] == "incoming/check/=dry-run" && google_cloudfunctions2_function.ingest.service_config[0].environment_variables["LEANPLUM_APP_IDS"] == "none"
    error_message = "Dry-run prefixes need no app: LEANPLUM_APP_IDS stays none."
  }
  assert {
    condition     = length(google_secret_manager_secret.leanplum_app_dev_key) == 0
    error_message = "dry-run has no key and no secret."
  }
}
