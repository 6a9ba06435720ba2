# ---------------------------------------------------------------------------------------------
# Service accounts: one per function, one for the Eventarc trigger, one whose OIDC token the
# poller's tasks carry, one for the functions' builds. Every grant is at the narrowest scope the
# API offers; only the Eventarc event receiver role and the Cloud Storage service agent's
# publisher role are project-wide, because Google offers no narrower scope for them.
# ---------------------------------------------------------------------------------------------

resource "google_service_account" "ingest" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "Leanplum importer: ingest function"
  description  = "Runs the ingest function: validates uploads, starts Leanplum import jobs, enqueues polls."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "poller" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-poller"
  display_name = "Leanplum importer: poller function"
  description  = "Runs the poller function: polls Leanplum import jobs, writes reports, publishes results."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks"
  display_name = "Leanplum importer: Cloud Tasks OIDC identity"
  description  = "Identity in the OIDC token of the poller's Cloud Tasks; may invoke the poller only."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-trigger"
  display_name = "Leanplum importer: Eventarc trigger"
  description  = "Identity of the Eventarc trigger that delivers object-finalized events to the ingest function."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "Leanplum importer: function builds"
  description  = "Cloud Build identity that builds both functions' images from the source archive."
  depends_on   = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Landing bucket: object roles on this bucket only, optionally limited to the prefixes each
# function works in (IAM conditions; the bucket-level clause keeps objects.list working).
# ---------------------------------------------------------------------------------------------

locals {
  objects_path = "projects/_/buckets/${local.bucket_name}/objects/"
  ingest_object_condition = join(" || ", [
    "resource.type == \"storage.googleapis.com/Bucket\"",
    "resource.name.startsWith(\"${local.objects_path}${var.incoming_prefix}\")",
    "resource.name.startsWith(\"${local.objects_path}${local.reserved_prefix}\")",
  ])
  poller_object_condition = join(" || ", [
    "resource.type == \"storage.googleapis.com/Bucket\"",
    "resource.name.startsWith(\"${local.objects_path}${local.reserved_prefix}\")",
  ])
}

# Read, create, overwrite and delete objects (no bucket or IAM administration).
resource "google_storage_bucket_iam_member" "ingest_objects" {
  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = google_service_account.ingest.member

  dynamic "condition" {
    for_each = var.restrict_object_access_to_prefixes ? [1] : []
    content {
      title       = "ingest-prefixes"
      description = "Objects under the incoming prefix and the importer's reserved prefix."
      expression  = local.ingest_object_condition
    }
  }

  depends_on = [google_storage_bucket.landing]
}

# The poller overwrites import records and writes reports: overwriting needs delete as well.
resource "google_storage_bucket_iam_member" "poller_objects" {
  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = google_service_account.poller.member

  dynamic "condition" {
    for_each = var.restrict_object_access_to_prefixes ? [1] : []
    content {
      title       = "poller-prefixes"
      description = "Objects under the importer's reserved prefix."
      expression  = local.poller_object_condition
    }
  }

  depends_on = [google_storage_bucket.landing]
}

# Uploaders (people, exporters) get objects under the incoming prefix only: anything under
# importer/ (the importer's own records and claims) stays out of their reach, so they cannot
# plant a content claim or edit a record. The bucket-level clause keeps objects.list working.
resource "google_storage_bucket_iam_member" "uploaders" {
  for_each = toset(var.uploader_members)

  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = each.value

  condition {
    title       = "uploads-only"
    description = "Objects under the incoming prefix; never the importer's reserved prefix."
    expression = join(" || ", [
      "resource.type == \"storage.googleapis.com/Bucket\"",
      "resource.name.startsWith(\"${local.objects_path}${var.incoming_prefix}\")",
    ])
  }

  depends_on = [google_storage_bucket.landing]
}

resource "google_storage_bucket_iam_member" "leanplum_reader" {
  count = var.leanplum_reader_member == null ? 0 : 1

  bucket     = local.bucket_name
  role       = "roles/storage.objectViewer"
  member     = var.leanplum_reader_member
  depends_on = [google_storage_bucket.landing]
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub, Secret Manager, Cloud Tasks, the poller and the ingest function: resource-level grants.
# ---------------------------------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "ingest_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.results.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.ingest.member
}

resource "google_pubsub_topic_iam_member" "poller_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.results.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.poller.member
}

resource "google_secret_manager_secret_iam_member" "ingest_dev_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.leanplum_dev_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ingest.member
}

resource "google_secret_manager_secret_iam_member" "poller_dev_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.leanplum_dev_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.poller.member
}

resource "google_cloud_tasks_queue_iam_member" "ingest_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.poll.location
  name     = google_cloud_tasks_queue.poll.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.ingest.member
}

# The ingest function creates tasks that carry an OIDC token of the tasks service account:
# Cloud Tasks requires actAs on that one service account, nothing more.
resource "google_service_account_iam_member" "ingest_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.ingest.member
}

# Only the tasks service account may invoke the poller (a 2nd gen function is a Cloud Run service
# of the same name).
resource "google_cloud_run_service_iam_member" "poller_invoker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.poller.location
  service  = google_cloudfunctions2_function.poller.name
  role     = "roles/run.invoker"
  member   = google_service_account.tasks.member
}

# Only the Eventarc trigger's service account may invoke the ingest function.
resource "google_cloud_run_service_iam_member" "ingest_invoker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.ingest.location
  service  = google_cloudfunctions2_function.ingest.name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

# ---------------------------------------------------------------------------------------------
# What Eventarc Cloud Storage triggers need (project-wide by Google's design).
# ---------------------------------------------------------------------------------------------

data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.enabled]
}

# The Cloud Storage service agent publishes the bucket's notifications to Eventarc's topic.
resource "google_project_iam_member" "gcs_agent_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger.member
}

# ---------------------------------------------------------------------------------------------
# Builds: logs, the importer's image repository, the source bucket. Nothing else.
# ---------------------------------------------------------------------------------------------

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.repository_id
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
