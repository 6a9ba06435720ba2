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

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Names of the two functions (each a Cloud Run service of the same name, whose structured logs
  # the alerts read: alerts.tf).
  function_names = {
    ingest = "${var.name_prefix}-ingest"
    poller = "${var.name_prefix}-poller"
  }

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
