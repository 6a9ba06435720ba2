# Wiring of infra/, checked offline against mocked providers: `terraform test` (Terraform >= 1.7).
# Nothing here reaches Google; computed attributes (ids, e-mails, URLs) get mocked values.

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
}

mock_provider "archive" {}

variables {
  project_id      = "acme-importer-test"
  region          = "europe-west1"
  leanplum_app_id = "app_test"
}

run "ingest_is_triggered_by_finalized_objects_of_the_bucket_with_retries" {
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
}

run "functions_build_from_the_hashed_source_archive" {
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
}

run "one_service_account_per_function_and_poller_invoked_by_tasks_only" {
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
  assert {
    condition = alltrue([
      for m in [google_storage_bucket_iam_member.ingest_objects, google_storage_bucket_iam_member.poller_objects] :
      m.bucket == google_storage_bucket.landing[0].name && m.role == "roles/storage.objectUser"
    ])
    error_message = "The functions' object roles are granted on the landing bucket only."
  }
  assert {
    condition     = strcontains(google_storage_bucket_iam_member.poller_objects.condition[0].expression, "/objects/importer/") && !strcontains(google_storage_bucket_iam_member.poller_objects.condition[0].expression, "/objects/incoming/")
    error_message = "The poller's object access is limited to importer/."
  }
}

run "secret_is_an_environment_variable_from_secret_manager" {
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
    condition     = google_cloudfunctions2_function.ingest.service_config[0].environment_variables["POLLER_URL"] == google_cloudfunctions2_function.poller.url && google_cloudfunctions2_function.ingest.service_config[0].environment_variables["TASKS_SERVICE_ACCOUNT"] == google_service_account.tasks.email && google_cloudfunctions2_function.ingest.service_config[0].environment_variables["TASKS_QUEUE"] == google_cloud_tasks_queue.poll.id
    error_message = "The ingest function must be told the poller URL, the tasks identity and the queue."
  }
}

run "queue_has_a_bounded_retry_budget_matching_the_poller" {
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
}

run "results_subscription_dead_letters" {
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
}

run "landing_bucket_is_private_recoverable_and_expires_derived_objects" {
  assert {
    condition     = google_storage_bucket.landing[0].uniform_bucket_level_access == true && google_storage_bucket.landing[0].public_access_prevention == "enforced"
    error_message = "The landing bucket must use uniform access and enforce public access prevention."
  }
  assert {
    condition     = google_storage_bucket.landing[0].versioning[0].enabled == true && google_storage_bucket.landing[0].soft_delete_policy[0].retention_duration_seconds >= 604800
    error_message = "Originals must be recoverable (versioning and soft delete)."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      contains(flatten([for c in r.condition : c.matches_prefix]), "importer/archive/") && anytrue([for c in r.condition : c.age == 30])
    ])
    error_message = "Archived originals must expire after archive_retention_days."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      contains(flatten([for c in r.condition : c.matches_prefix]), "importer/reports/") && anytrue([for c in r.condition : c.age == 90])
    ])
    error_message = "Reports must expire after reports_retention_days."
  }
  assert {
    condition = anytrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      contains(flatten([for c in r.condition : c.matches_prefix]), "importer/parts/") && anytrue([for c in r.condition : c.age == 7])
    ])
    error_message = "Split parts must expire after parts_retention_days."
  }
  assert {
    condition = !anytrue([
      for r in google_storage_bucket.landing[0].lifecycle_rule :
      contains(flatten([for c in r.condition : c.matches_prefix]), "importer/records/")
    ])
    error_message = "Import records are kept."
  }
  assert {
    condition     = google_storage_bucket.source.uniform_bucket_level_access == true && google_storage_bucket.source.public_access_prevention == "enforced"
    error_message = "The source bucket must be private too."
  }
}

run "no_public_members" {
  assert {
    condition = alltrue([
      for m in [
        google_storage_bucket_iam_member.ingest_objects.member,
        google_storage_bucket_iam_member.poller_objects.member,
        google_storage_bucket_iam_member.build_source_reader.member,
        google_pubsub_topic_iam_member.ingest_publisher.member,
        google_pubsub_topic_iam_member.poller_publisher.member,
        google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher.member,
        google_pubsub_subscription_iam_member.pubsub_agent_results_subscriber.member,
        google_secret_manager_secret_iam_member.ingest_dev_key.member,
        google_secret_manager_secret_iam_member.poller_dev_key.member,
        google_cloud_tasks_queue_iam_member.ingest_enqueuer.member,
        google_service_account_iam_member.ingest_acts_as_tasks.member,
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
      strcontains(g.condition[0].expression, "/objects/incoming/") && !strcontains(g.condition[0].expression, "importer/")
    ])
    error_message = "Uploaders must be conditioned to the incoming prefix and never reach importer/."
  }
}
