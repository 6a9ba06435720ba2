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
  }
}

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

  # Originals are recoverable: overwritten or deleted objects stay as noncurrent versions for
  # noncurrent_version_retention_days, then in soft delete for soft_delete_retention_seconds.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
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

  # Split parts are only read by Leanplum's job and the poller's join; both are over long
  # before this (the poll deadline is a day).
  lifecycle_rule {
    condition {
      age            = var.parts_retention_days
      matches_prefix = [local.parts_prefix]
    }
    action {
      type = "Delete"
    }
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
  force_destroy = var.force_destroy

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
