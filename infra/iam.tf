# ---------------------------------------------------------------------------------------------
# Service accounts: one per function, one for the Eventarc trigger, one whose OIDC token the
# poller's tasks carry, one for the functions' builds. Every grant is at the narrowest scope the
# API offers; only the Eventarc event receiver role and the Cloud Storage service agent's
# publisher role are project-wide, because Google offers no narrower scope for them, and the
# build's read of gcf-v2-sources-* is a project grant conditioned to that one bucket.
# ---------------------------------------------------------------------------------------------

resource "google_service_account" "ingest" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "Leanplum importer: ingest function"
  description  = "Runs the ingest function: validates uploads, starts Leanplum import jobs or queues the file for a job slot, enqueues polls."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "poller" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-poller"
  display_name = "Leanplum importer: poller function"
  description  = "Runs the poller function: starts queued files, polls Leanplum import jobs, writes reports, publishes results."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks"
  display_name = "Leanplum importer: Cloud Tasks OIDC identity"
  description  = "Identity in the OIDC token of the poller's Cloud Tasks (polls and starts); may invoke the poller only."
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
# Object access of the two functions: exactly the rows of functions/access.py ACCESS, one
# resource per (function, bucket, role). On the landing and state buckets a read-only row is
# roles/storage.objectViewer, a read-write row roles/storage.objectUser (overwriting an object
# needs delete too); on Leanplum's bucket, see below. Each grant is conditioned to its rows'
# prefixes; the bucket-level clause keeps objects.list working.
# tests/infra/test_terraform.py compares these conditions with ACCESS: a row without a grant,
# or a grant without a row, fails it. Keep the pattern
# "resource.name.startsWith(\"${local.<landing|state|leanplum>_objects}${<prefix>}\")" that it
# reads.
# ---------------------------------------------------------------------------------------------

locals {
  landing_objects = "projects/_/buckets/${local.bucket_name}/objects/"
  state_objects   = "projects/_/buckets/${google_storage_bucket.state.name}/objects/"
  bucket_level    = "resource.type == \"storage.googleapis.com/Bucket\""
}

# ingest, landing, read-write: the upload (read at its generation, rewritten in place).
resource "google_storage_bucket_iam_member" "ingest_landing_write" {
  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = google_service_account.ingest.member

  condition {
    title       = "ingest-landing-write"
    description = "Uploads under the incoming prefix."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.landing_objects}${var.incoming_prefix}\")",
    ])
  }

  depends_on = [google_storage_bucket.landing]
}

# ingest, landing, read-only: records of imports begun before the state bucket existed.
resource "google_storage_bucket_iam_member" "ingest_landing_read" {
  bucket = local.bucket_name
  role   = "roles/storage.objectViewer"
  member = google_service_account.ingest.member

  condition {
    title       = "ingest-landing-read"
    description = "Import records left in the landing bucket by earlier deployments."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.landing_objects}${local.records_prefix}\")",
    ])
  }

  depends_on = [google_storage_bucket.landing]
}

# ingest, state, read-write: records and claims, archive, reports, the files Leanplum reads,
# the job slots and the waiting list.
resource "google_storage_bucket_iam_member" "ingest_state_write" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = google_service_account.ingest.member

  condition {
    title       = "ingest-state-write"
    description = "Records, archive, reports, parts, job slots and waiting list of the importer."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.state_objects}${local.records_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.archive_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.reports_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.parts_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.slots_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.waiting_prefix}\")",
    ])
  }
}

# poller, landing, read-only: the uploads (a queued file is checked not to have been replaced
# before its job starts) and records of imports begun before the state bucket existed.
resource "google_storage_bucket_iam_member" "poller_landing_read" {
  bucket = local.bucket_name
  role   = "roles/storage.objectViewer"
  member = google_service_account.poller.member

  condition {
    title       = "poller-landing-read"
    description = "Uploads under the incoming prefix, and import records left in the landing bucket by earlier deployments."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.landing_objects}${var.incoming_prefix}\")",
      "resource.name.startsWith(\"${local.landing_objects}${local.records_prefix}\")",
    ])
  }

  depends_on = [google_storage_bucket.landing]
}

# poller, state, read-write: records (moved to their end), reports (failed rows), the job slots
# (given back, taken for queued files) and the waiting list (started files taken off it).
resource "google_storage_bucket_iam_member" "poller_state_write" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = google_service_account.poller.member

  condition {
    title       = "poller-state-write"
    description = "Records, reports, job slots and waiting list of the importer."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.state_objects}${local.records_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.reports_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.slots_prefix}\")",
      "resource.name.startsWith(\"${local.state_objects}${local.waiting_prefix}\")",
    ])
  }
}

# poller, state, read-only: the parts Leanplum read, joined to Leanplum's results.
resource "google_storage_bucket_iam_member" "poller_state_read" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.poller.member

  condition {
    title       = "poller-state-read"
    description = "The files Leanplum read."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.state_objects}${local.parts_prefix}\")",
    ])
  }
}

# ---------------------------------------------------------------------------------------------
# The bucket Leanplum reads (LEANPLUM_BUCKET, optional): never created or changed here. The
# functions' rows of ACCESS for it are read-write under leanplum_bucket_prefix: the ingest
# function copies the files there (objects.create, objects.get for its preconditions) and both
# delete them once the jobs ended (objects.delete). No bucket-level clause: neither function
# lists that bucket, and Leanplum's other objects stay out of reach. The role depends on
# leanplum_bucket_iam (infra/README.md, "The bucket Leanplum reads"):
# - custom_role: two roles of this project with exactly those permissions; usable on buckets
#   of this project only (a project's custom role cannot be granted in another project);
# - predefined_role: roles/storage.objectUser (objectCreator lacks delete), conditioned the same
#   way: also get/list/update/restore of the importer's own copies, for a bucket elsewhere;
# - external: no grant here; output leanplum_bucket_access says what the bucket's admins grant.
# ---------------------------------------------------------------------------------------------

locals {
  leanplum_bucket_used    = !contains(["", "none"], var.leanplum_bucket)
  leanplum_bucket_setting = local.leanplum_bucket_used ? var.leanplum_bucket : "none"
  leanplum_objects        = "projects/_/buckets/${var.leanplum_bucket}/objects/"
  # Grants made by Terraform: a bucket is set and its admins are not left to do it.
  leanplum_bucket_grants = local.leanplum_bucket_used && var.leanplum_bucket_iam != "external"
  leanplum_custom_roles  = local.leanplum_bucket_used && var.leanplum_bucket_iam == "custom_role"

  # What each function does in that bucket, as permissions (custom roles, and the hand-over).
  leanplum_bucket_permissions = {
    ingest = ["storage.objects.create", "storage.objects.delete", "storage.objects.get"]
    poller = ["storage.objects.delete"]
  }
  leanplum_bucket_roles = {
    ingest = local.leanplum_custom_roles ? google_project_iam_custom_role.leanplum_copy[0].id : "roles/storage.objectUser"
    poller = local.leanplum_custom_roles ? google_project_iam_custom_role.leanplum_cleanup[0].id : "roles/storage.objectUser"
  }
  leanplum_bucket_condition = "resource.name.startsWith(\"${local.leanplum_objects}${var.leanplum_bucket_prefix}\")"
}

# Read when Terraform grants on the bucket: the grants are IAM conditions, which Cloud Storage
# accepts only on buckets with uniform bucket-level access (checked at plan time, like the
# landing bucket).
data "google_storage_bucket" "leanplum" {
  count = local.leanplum_bucket_grants ? 1 : 0
  name  = var.leanplum_bucket

  lifecycle {
    postcondition {
      condition     = self.uniform_bucket_level_access == true
      error_message = "Leanplum's bucket ${var.leanplum_bucket} must use uniform bucket-level access: the functions' grants on it are IAM conditions (on leanplum_bucket_prefix), which Cloud Storage refuses on buckets with fine-grained (ACL) access. Ask its owner to enable it, or set leanplum_bucket_iam = \"external\"."
    }
  }
}

resource "google_project_iam_custom_role" "leanplum_copy" {
  count = local.leanplum_custom_roles ? 1 : 0

  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_leanplum_copy"
  title       = "Leanplum importer: copies in Leanplum's bucket"
  description = "Create, read (preconditions) and delete the importer's copies in the bucket Leanplum reads; granted on that bucket only, conditioned to the importer's prefix."
  permissions = local.leanplum_bucket_permissions.ingest
  stage       = "GA"

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_custom_role" "leanplum_cleanup" {
  count = local.leanplum_custom_roles ? 1 : 0

  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_leanplum_cleanup"
  title       = "Leanplum importer: clean-up in Leanplum's bucket"
  description = "Delete the importer's copies in the bucket Leanplum reads once their jobs ended; granted on that bucket only, conditioned to the importer's prefix."
  permissions = local.leanplum_bucket_permissions.poller
  stage       = "GA"

  depends_on = [google_project_service.enabled]
}

# ingest, leanplum, read-write: copies the files Leanplum imports, deletes them.
resource "google_storage_bucket_iam_member" "ingest_leanplum_write" {
  count = local.leanplum_bucket_grants ? 1 : 0

  bucket = var.leanplum_bucket
  role   = local.leanplum_bucket_roles.ingest
  member = google_service_account.ingest.member

  condition {
    title       = "ingest-leanplum-copies"
    description = "The importer's copies in the bucket Leanplum reads."
    expression  = "resource.name.startsWith(\"${local.leanplum_objects}${var.leanplum_bucket_prefix}\")"
  }

  depends_on = [data.google_storage_bucket.leanplum]
}

# poller, leanplum, read-write: deletes the copies once the jobs ended.
resource "google_storage_bucket_iam_member" "poller_leanplum_write" {
  count = local.leanplum_bucket_grants ? 1 : 0

  bucket = var.leanplum_bucket
  role   = local.leanplum_bucket_roles.poller
  member = google_service_account.poller.member

  condition {
    title       = "poller-leanplum-cleanup"
    description = "The importer's copies in the bucket Leanplum reads."
    expression  = "resource.name.startsWith(\"${local.leanplum_objects}${var.leanplum_bucket_prefix}\")"
  }

  depends_on = [data.google_storage_bucket.leanplum]
}

# ---------------------------------------------------------------------------------------------
# People and Leanplum.
# ---------------------------------------------------------------------------------------------

# Uploaders (people, exporters) get objects under the incoming prefix of the landing bucket,
# and nothing at all on the state bucket (records, claims, archive, reports, parts).
resource "google_storage_bucket_iam_member" "uploaders" {
  for_each = toset(var.uploader_members)

  bucket = local.bucket_name
  role   = "roles/storage.objectUser"
  member = each.value

  condition {
    title       = "uploads-only"
    description = "Objects under the incoming prefix of the landing bucket."
    expression = join(" || ", [
      local.bucket_level,
      "resource.name.startsWith(\"${local.landing_objects}${var.incoming_prefix}\")",
    ])
  }

  depends_on = [google_storage_bucket.landing]
}

# Leanplum's import job reads the files named in `multi` (gcsBucket = the state bucket, file
# under importer/parts/): object read there and nowhere else. No bucket-level clause: Leanplum
# gets the objects it is named, not a listing of the importer's object names.
resource "google_storage_bucket_iam_member" "leanplum_reader" {
  count = var.leanplum_reader_member == null ? 0 : 1

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = var.leanplum_reader_member

  condition {
    title       = "leanplum-parts-only"
    description = "The files the importer asks Leanplum to import."
    expression  = "resource.name.startsWith(\"${local.state_objects}${local.parts_prefix}\")"
  }
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

# Each app's key (leanplum_apps): both functions read every app's key (the ingest function
# starts jobs, the poller starts queued files and polls), so each reads exactly the default
# secret and these.
resource "google_secret_manager_secret_iam_member" "ingest_app_dev_key" {
  for_each = google_secret_manager_secret.leanplum_app_dev_key

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ingest.member
}

resource "google_secret_manager_secret_iam_member" "poller_app_dev_key" {
  for_each = google_secret_manager_secret.leanplum_app_dev_key

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.poller.member
}

# Who creates which tasks: the ingest function poll tasks (a job it started) and start tasks (a
# file that found every job slot taken); the poller poll tasks (a queued file whose job it
# started). Each enqueues on the queues it uses only.
resource "google_cloud_tasks_queue_iam_member" "ingest_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.poll.location
  name     = google_cloud_tasks_queue.poll.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.ingest.member
}

resource "google_cloud_tasks_queue_iam_member" "ingest_start_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.start.location
  name     = google_cloud_tasks_queue.start.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.ingest.member
}

resource "google_cloud_tasks_queue_iam_member" "poller_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.poll.location
  name     = google_cloud_tasks_queue.poll.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.poller.member
}

# Both functions create tasks that carry an OIDC token of the tasks service account: Cloud Tasks
# requires actAs on that one service account, nothing more.
resource "google_service_account_iam_member" "ingest_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.ingest.member
}

resource "google_service_account_iam_member" "poller_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.poller.member
}

# Only the tasks service account may invoke the poller (a 2nd gen function is a Cloud Run service
# of the same name). Poll and start tasks call the same URL with the same OIDC audience, so this
# one grant serves both queues.
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
# Builds: logs, the importer's image repository, the source bucket, and Google's copy of the
# source. Nothing else.
# ---------------------------------------------------------------------------------------------

locals {
  # 2nd gen functions copy the source object into this bucket of the project (created by Cloud
  # Functions on the region's first deployment) and the build fetches it from there.
  gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

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

# The build fetches the source from gcf-v2-sources-<project number>-<region> ("Access to bucket
# gcf-v2-sources-... denied. You must grant Storage Object Viewer permission to <build SA>").
# That bucket does not exist before the first deployment, so a bucket-level grant cannot be made
# in the same apply: the role is granted on the project, conditioned to that one bucket and its
# objects, which is as narrow as IAM allows for a bucket that does not exist yet.
resource "google_project_iam_member" "build_gcf_sources_reader" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title       = "gcf-v2-sources-only"
    description = "Cloud Functions' copy of the function source, read by the build."
    expression = join(" || ", [
      "resource.name == \"projects/_/buckets/${local.gcf_sources_bucket}\"",
      "resource.name.startsWith(\"projects/_/buckets/${local.gcf_sources_bucket}/objects/\")",
    ])
  }

  depends_on = [google_project_service.enabled]
}
