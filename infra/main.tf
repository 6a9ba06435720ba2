provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, {
    app        = "leanplum-importer"
    managed-by = "terraform"
  })

  # Object prefixes reserved by the importer (functions/config.py: RESERVED_PREFIX and friends).
  # They live in the state bucket; the landing bucket holds only uploads under incoming_prefix
  # (and, from deployments before the state bucket, old records the functions may still read).
  reserved_prefix = "importer/"
  records_prefix  = "${local.reserved_prefix}records/"
  archive_prefix  = "${local.reserved_prefix}archive/"
  reports_prefix  = "${local.reserved_prefix}reports/"
  parts_prefix    = "${local.reserved_prefix}parts/"
  # Live state of the job slots (MAX_RUNNING_JOBS) and of the files waiting for one: no
  # lifecycle rule may ever delete them (storage.tf).
  slots_prefix   = "${local.reserved_prefix}slots/"
  waiting_prefix = "${local.reserved_prefix}waiting/"

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Names of the two functions (each a Cloud Run service of the same name, whose structured logs
  # the alerts read: alerts.tf).
  function_names = {
    ingest = "${var.name_prefix}-ingest"
    poller = "${var.name_prefix}-poller"
  }

  # The poller's deterministic Cloud Run URL, https://<service>-<project number>.<region>.run.app:
  # POLLER_URL of both functions (the URL of the poll and start tasks, and their OIDC audience).
  # The poller needs its own URL in its environment, which cannot reference the function itself
  # (a cycle), so it is computed; a check block (functions.tf) compares it with the URLs Cloud Run
  # reports once the poller exists.
  poller_url = "https://${local.function_names.poller}-${data.google_project.this.number}.${var.region}.run.app"

  services = setunion([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    # Project IAM grants (google_project_iam_member) read and write the project's policy with it.
    "cloudresourcemanager.googleapis.com",
    "cloudtasks.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    # Alert policies (alerts.tf).
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ], var.enable_history ? ["bigquery.googleapis.com"] : [])
}

resource "google_project_service" "enabled" {
  for_each = var.enable_apis ? local.services : toset([])

  project = var.project_id
  service = each.value
  # Other workloads of the project may use these APIs too: never switch them off on destroy.
  disable_on_destroy = false
}
