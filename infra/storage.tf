# ---------------------------------------------------------------------------------------------
# Landing bucket: created here, or an existing one (for example provided by Leanplum).
# ---------------------------------------------------------------------------------------------

locals {
  # "" only when create_bucket is false and bucket_name is missing: the precondition below then
  # stops the plan with a clear message.
  bucket_name = var.create_bucket ? coalesce(var.bucket_name, "${var.project_id}-${var.name_prefix}-landing") : (var.bucket_name == null ? "" : var.bucket_name)
  # Eventarc Cloud Storage triggers must sit in the bucket's location (region, dual- or multi-region).
  bucket_location = var.create_bucket ? upper(coalesce(var.bucket_location, var.region)) : data.google_storage_bucket.existing[0].location
  trigger_region  = lower(local.bucket_location)
}

data "google_storage_bucket" "existing" {
  count = var.create_bucket ? 0 : 1
  name  = local.bucket_name

  lifecycle {
    precondition {
      condition     = local.bucket_name != ""
      error_message = "bucket_name is required when create_bucket is false."
    }
    # Every grant on the landing bucket is an IAM condition (a prefix), and Cloud Storage takes
    # conditional bindings only on buckets with uniform bucket-level access. Checked when the
    # plan reads the bucket, so the apply does not fail half-way on the first grant.
    postcondition {
      condition     = self.uniform_bucket_level_access == true
      error_message = "The existing bucket ${local.bucket_name} must use uniform bucket-level access: the importer's grants on it are IAM conditions, which Cloud Storage refuses on buckets with fine-grained (ACL) access. Enable it (gcloud storage buckets update gs://${local.bucket_name} --uniform-bucket-level-access) or let Terraform create the bucket."
    }
  }
}

# Uploads only (under incoming_prefix) and their in-place rewrite: the importer's own objects
# live in the state bucket, so none of its writes wakes the ingest function.
resource "google_storage_bucket" "landing" {
  # checkov:skip=CKV_GCP_62: usage/access logs are a legacy mechanism; object access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com), see infra/README.md.
  count = var.create_bucket ? 1 : 0

  name          = local.bucket_name
  project       = var.project_id
  location      = local.bucket_location
  storage_class = "STANDARD"
  labels        = local.labels
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # An upload replaced by its rewrite (or by a newer upload of the same name) stays a noncurrent
  # version for noncurrent_version_retention_days, then in soft delete for
  # soft_delete_retention_seconds. The live object is kept until someone deletes it.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# State bucket (STATE_BUCKET): the importer's records and content claims, the archived
# originals, the reports, the files Leanplum reads, the job slots and the waiting list. Private: only the two functions (each
# conditioned to its prefixes, functions/access.py) and, optionally, Leanplum's reader (parts
# only). No uploader has any access to it, and nothing in it triggers a function.
# ---------------------------------------------------------------------------------------------

locals {
  state_bucket_name = coalesce(var.state_bucket_name, "${var.project_id}-${var.name_prefix}-state")
}

resource "google_storage_bucket" "state" {
  # checkov:skip=CKV_GCP_62: usage/access logs are a legacy mechanism; object access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com), see infra/README.md.
  # checkov:skip=CKV_GCP_78: no object versioning on purpose: records are rewritten by compare-and-swap several times per import and every noncurrent copy would be billed; the archive under importer/archive/ is the recoverable copy of each upload, and lifecycle deletions must really delete (see infra/README.md, Retention).
  name          = local.state_bucket_name
  project       = var.project_id
  location      = local.bucket_location
  storage_class = "STANDARD"
  labels        = local.labels
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Unversioned: a lifecycle Delete removes the object (no noncurrent copy is left behind).
  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.state_soft_delete_retention_seconds
  }

  lifecycle_rule {
    condition {
      age            = var.archive_retention_days
      matches_prefix = [local.archive_prefix]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.reports_retention_days
      matches_prefix = [local.reports_prefix]
    }
    action {
      type = "Delete"
    }
  }

  # What Leanplum reads (every import's normalised copy, split above 100 MB). Leanplum's job and
  # the poller's join are over once the file has waited at most max_queued_seconds for a job
  # slot and the poll queue's retry window has ended (precondition below).
  lifecycle_rule {
    condition {
      age            = var.parts_retention_days
      matches_prefix = [local.parts_prefix]
    }
    action {
      type = "Delete"
    }
  }

  # importer/records/ (import records and content claims) has no rule: duplicate detection
  # needs the record a claim names, and the objects are small JSON.
  # importer/slots/ (one object per Leanplum job running now) and importer/waiting/ (one per
  # file waiting for a slot) have no rule either: they are live state, a handful of small
  # objects that the functions delete themselves (a slot when its job ends, an entry when its
  # file starts or times out; a stale one is taken back by the next file). An age-based Delete
  # would free a slot whose job still runs, or drop a file from the waiting order.

  lifecycle {
    precondition {
      condition     = var.parts_retention_days * 86400 >= var.max_queued_seconds + local.tasks_max_retry_duration_seconds
      error_message = "parts_retention_days (${var.parts_retention_days} d) must outlast max_queued_seconds plus the poll queue's retry window (${var.max_queued_seconds + local.tasks_max_retry_duration_seconds} s): a file's parts are written before it waits for a job slot, Leanplum reads them once its job starts, and the poller joins Leanplum's results to them until its last attempt."
    }
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Function source: main.py, functions/ and requirements.txt, zipped; the object is named by the
# archive's hash, so any change of the code uploads a new object and redeploys both functions.
# ---------------------------------------------------------------------------------------------

locals {
  repo_root = abspath("${path.module}/..")
  source_files = setunion(
    ["main.py", "requirements.txt"],
    [
      for f in fileset(local.repo_root, "functions/**") : f
      if !strcontains(f, "__pycache__") && !endswith(f, ".pyc")
    ],
  )
}

data "archive_file" "function_source" {
  type        = "zip"
  output_path = "${path.module}/.terraform/tmp/function-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.value
      content  = file("${local.repo_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: usage/access logs are a legacy mechanism; this bucket holds only build inputs, audited with Cloud Audit Logs.
  name          = "${var.project_id}-${var.name_prefix}-source"
  project       = var.project_id
  location      = upper(var.region)
  storage_class = "STANDARD"
  labels        = local.labels
  # Build inputs only, rebuilt from the repository at will: destroy may empty it (its noncurrent
  # versions would otherwise make `terraform destroy` fail with "bucket not empty").
  force_destroy = true

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "function_source" {
  name   = "function-source/${data.archive_file.function_source.output_sha256}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.function_source.output_path
}
