# ---------------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project that hosts the importer."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, the Cloud Tasks queue, the build repository and (by default) the landing bucket."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, service accounts, topics, queue, secret, buckets)."
  type        = string
  default     = "lp-importer"

  validation {
    # Service account IDs are at most 30 characters and the longest suffix is "-trigger".
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2 to 21 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Enable the Google APIs the importer needs. Turn off where a platform team enables APIs itself."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Landing bucket
# ---------------------------------------------------------------------------------------------

variable "create_bucket" {
  description = "Create the landing bucket (true) or use an existing one named by bucket_name (false), for example a bucket Leanplum provides. An existing bucket must be in this project (Eventarc Cloud Storage triggers), must use uniform bucket-level access (the grants are IAM conditions; checked at plan time) and keeps its own settings and lifecycle rules."
  type        = bool
  default     = true
}

variable "bucket_name" {
  description = "Name of the landing bucket. Required when create_bucket is false; defaults to \"<project_id>-<name_prefix>-landing\" otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid Cloud Storage bucket name (3 to 63 lowercase letters, digits, dots, hyphens or underscores)."
  }
}

variable "bucket_location" {
  description = "Location of a created landing bucket (region, dual-region or multi-region). Defaults to var.region. The Eventarc trigger is placed in the same location, as Cloud Storage triggers require."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the created landing and state buckets even when they still hold objects. Keep false in production. (The source bucket, which holds only build inputs, is always force_destroy.)"
  type        = bool
  default     = false
}

variable "incoming_prefix" {
  description = "Only objects under this prefix, ending in .csv, are imported (INCOMING_PREFIX)."
  type        = string
  default     = "incoming/"

  validation {
    condition     = endswith(var.incoming_prefix, "/") && !startswith(var.incoming_prefix, "/") && !startswith(var.incoming_prefix, "importer/")
    error_message = "incoming_prefix must end with \"/\", not start with \"/\", and not be inside the importer's reserved prefix \"importer/\"."
  }
}

variable "archive_retention_days" {
  description = "Days the archived original uploads are kept under importer/archive/ in the state bucket before the lifecycle rule deletes them (the state bucket is not versioned: deleted means gone, after soft delete if state_soft_delete_retention_seconds is set)."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_retention_days >= 1 && floor(var.archive_retention_days) == var.archive_retention_days
    error_message = "archive_retention_days must be a whole number of days, at least 1."
  }
}

variable "reports_retention_days" {
  description = "Days the reports (rejected and failed rows) are kept under importer/reports/ in the state bucket before the lifecycle rule deletes them."
  type        = number
  default     = 90

  validation {
    condition     = var.reports_retention_days >= 1 && floor(var.reports_retention_days) == var.reports_retention_days
    error_message = "reports_retention_days must be a whole number of days, at least 1."
  }
}

variable "parts_retention_days" {
  description = "Days the files Leanplum reads (the normalised copy of every import, split in parts above 100 MB) are kept under importer/parts/ in the state bucket before the lifecycle rule deletes them. Must outlast max_queued_seconds (a file's parts are written before it waits for a job slot) plus the poll queue's retry window (poll deadline plus one hour): checked at plan time."
  type        = number
  default     = 7

  validation {
    condition     = var.parts_retention_days >= 2 && floor(var.parts_retention_days) == var.parts_retention_days
    error_message = "parts_retention_days must be a whole number of days, at least 2 (a job may be polled for a day)."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted version of an upload in the landing bucket (for example the original replaced by the in-place rewrite) stays as a noncurrent version before it is deleted (then it spends soft_delete_retention_seconds in soft delete)."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number of days, at least 1."
  }
}

variable "soft_delete_retention_seconds" {
  description = "Soft delete window of a created landing bucket, in seconds: 0 (off) or 7 to 90 days."
  type        = number
  default     = 604800

  validation {
    condition     = var.soft_delete_retention_seconds == 0 || (var.soft_delete_retention_seconds >= 604800 && var.soft_delete_retention_seconds <= 7776000)
    error_message = "soft_delete_retention_seconds must be 0 or between 604800 (7 days) and 7776000 (90 days)."
  }
}

# ---------------------------------------------------------------------------------------------
# State bucket: the importer's records, claims, archive, reports and the files Leanplum reads
# ---------------------------------------------------------------------------------------------

variable "state_bucket_name" {
  description = "Name of the private state bucket (STATE_BUCKET). Defaults to \"<project_id>-<name_prefix>-state\". Always created here, in the landing bucket's location."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid Cloud Storage bucket name (3 to 63 lowercase letters, digits, dots, hyphens or underscores)."
  }
}

variable "state_soft_delete_retention_seconds" {
  description = "Soft delete window of the state bucket, in seconds: 0 (off, the default) or 7 to 90 days. Records are overwritten several times per import; with soft delete on, each overwritten copy is kept (and billed) for the whole window."
  type        = number
  default     = 0

  validation {
    condition     = var.state_soft_delete_retention_seconds == 0 || (var.state_soft_delete_retention_seconds >= 604800 && var.state_soft_delete_retention_seconds <= 7776000)
    error_message = "state_soft_delete_retention_seconds must be 0 or between 604800 (7 days) and 7776000 (90 days)."
  }
}

variable "leanplum_reader_member" {
  description = "Optional IAM principal that Leanplum's import job reads the files with, e.g. \"serviceAccount:importer@leanplum-project.iam.gserviceaccount.com\" or \"group:...\": granted roles/storage.objectViewer on the state bucket, conditioned to importer/parts/ (the only objects Leanplum is asked to read). null grants nothing."
  type        = string
  default     = null

  validation {
    condition     = var.leanplum_reader_member == null || can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", var.leanplum_reader_member))
    error_message = "leanplum_reader_member must be an IAM principal such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com; public members (allUsers, allAuthenticatedUsers) are refused."
  }
}

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------

variable "python_runtime" {
  description = "Cloud Functions Python runtime of both functions (the code targets Python 3.11 and later)."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.python_runtime)
    error_message = "python_runtime must be python311, python312 or python313."
  }
}

variable "ingest_memory" {
  description = "Memory of one ingest function instance. Its /tmp is in memory and holds the original, the normalised file and its parts: about 3x the largest file, plus the runtime."
  type        = string
  default     = "4Gi"
}

variable "ingest_timeout_seconds" {
  description = "Timeout of one ingest invocation; event-driven functions allow at most 540 s."
  type        = number
  default     = 540

  validation {
    condition     = var.ingest_timeout_seconds >= 1 && var.ingest_timeout_seconds <= 540
    error_message = "ingest_timeout_seconds must be between 1 and 540."
  }
}

variable "ingest_max_instances" {
  description = "Upper bound on concurrent ingest instances (uploads processed in parallel)."
  type        = number
  default     = 10

  validation {
    condition     = var.ingest_max_instances >= 1
    error_message = "ingest_max_instances must be at least 1."
  }
}

variable "poller_memory" {
  description = "Memory of one poller function instance."
  type        = string
  default     = "512Mi"
}

variable "poller_timeout_seconds" {
  description = "Timeout of one poller invocation. Cloud Tasks waits at most 30 min for an HTTP target."
  type        = number
  default     = 300

  validation {
    condition     = var.poller_timeout_seconds >= 1 && var.poller_timeout_seconds <= 1800
    error_message = "poller_timeout_seconds must be between 1 and 1800."
  }
}

variable "poller_max_instances" {
  description = "Upper bound on concurrent poller instances."
  type        = number
  default     = 10

  validation {
    condition     = var.poller_max_instances >= 1
    error_message = "poller_max_instances must be at least 1."
  }
}

variable "poller_ingress" {
  description = "Ingress setting of the poller. ALLOW_INTERNAL_ONLY admits Cloud Tasks of the same project (or VPC Service Controls perimeter); ALLOW_ALL only where the queue lives elsewhere. Invocation needs IAM either way."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.poller_ingress)
    error_message = "poller_ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

# ---------------------------------------------------------------------------------------------
# Importer settings (environment variables; see functions/config.py SETTINGS)
# ---------------------------------------------------------------------------------------------

variable "leanplum_app_id" {
  description = "Leanplum app id (LEANPLUM_APP_ID). The development key is not a variable: it lives in Secret Manager only."
  type        = string

  validation {
    condition     = length(trimspace(var.leanplum_app_id)) > 0
    error_message = "leanplum_app_id must not be empty."
  }
}

variable "leanplum_api_url" {
  description = "Leanplum API endpoint (LEANPLUM_API_URL)."
  type        = string
  default     = "https://api.leanplum.com/api"

  validation {
    condition     = startswith(var.leanplum_api_url, "https://")
    error_message = "leanplum_api_url must be an https URL."
  }
}

variable "old_event_policy" {
  description = "Events older than 365 days: move (to import time - 360 days), reject or keep (OLD_EVENT_POLICY)."
  type        = string
  default     = "move"

  validation {
    condition     = contains(["move", "reject", "keep"], var.old_event_policy)
    error_message = "old_event_policy must be move, reject or keep."
  }
}

variable "max_future_seconds" {
  description = "Events further in the future than this many seconds are rejected (MAX_FUTURE_SECONDS)."
  type        = number
  default     = 600

  validation {
    condition     = var.max_future_seconds >= 1 && floor(var.max_future_seconds) == var.max_future_seconds
    error_message = "max_future_seconds must be a positive whole number."
  }
}

variable "max_rejected_fraction" {
  description = "A file with a larger share of rejected rows is refused as a whole (MAX_REJECTED_FRACTION, 0 to 1)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.max_rejected_fraction >= 0 && var.max_rejected_fraction <= 1
    error_message = "max_rejected_fraction must be between 0 and 1."
  }
}

variable "max_decompressed_bytes" {
  description = "A gzip upload that expands past this many bytes is refused (MAX_DECOMPRESSED_BYTES). It bounds /tmp, which is memory in Cloud Functions: keep it well under ingest_memory."
  type        = number
  default     = 2000000000

  validation {
    condition     = var.max_decompressed_bytes >= 1 && floor(var.max_decompressed_bytes) == var.max_decompressed_bytes
    error_message = "max_decompressed_bytes must be a positive whole number."
  }
}

variable "max_compression_ratio" {
  description = "A gzip upload that expands more than this many times its size is refused as a possible decompression bomb (MAX_COMPRESSION_RATIO)."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_compression_ratio >= 1 && floor(var.max_compression_ratio) == var.max_compression_ratio
    error_message = "max_compression_ratio must be a positive whole number."
  }
}

variable "naive_time_zone" {
  description = "Times with no zone (BigQuery DATETIME, naive ISO) are read in this IANA zone, e.g. \"UTC\" or \"Europe/Berlin\"; \"none\" rejects them (NAIVE_TIME_ZONE)."
  type        = string
  default     = "none"
}

variable "duplicate_rows" {
  description = "Rows repeated exactly within one file: drop (counted in the result) or keep (DUPLICATE_ROWS)."
  type        = string
  default     = "drop"

  validation {
    condition     = contains(["drop", "keep"], var.duplicate_rows)
    error_message = "duplicate_rows must be drop or keep."
  }
}

variable "column_map" {
  description = "Source column of each track argument an export cannot rename, e.g. \"userId=user_pseudo_id,time=event_timestamp\"; \"none\" for no mapping (COLUMN_MAP)."
  type        = string
  default     = "none"
}

variable "drop_columns" {
  description = "Columns left out of the import (not sent as parameters), comma-separated, e.g. \"event_date,ga_session_number\"; \"none\" (DROP_COLUMNS)."
  type        = string
  default     = "none"
}

variable "min_event_time" {
  description = "Events before this UTC date are rejected as placeholders, such as a time of 0 or a 1900 date (MIN_EVENT_TIME)."
  type        = string
  default     = "2000-01-01"

  validation {
    condition     = can(regex("^(19[7-9][0-9]|2[0-9]{3})-[01][0-9]-[0-3][0-9]$", var.min_event_time))
    error_message = "min_event_time must be a date like 2000-01-01, not before 1970."
  }
}

variable "duplicate_policy" {
  description = "A re-upload of identical bytes: skip (DUPLICATE result, no job) or import (DUPLICATE_POLICY)."
  type        = string
  default     = "skip"

  validation {
    condition     = contains(["skip", "import"], var.duplicate_policy)
    error_message = "duplicate_policy must be skip or import."
  }
}

variable "poll_first_delay_seconds" {
  description = "Delay before the first poll of a new Leanplum job; later polls follow the queue's backoff (POLL_FIRST_DELAY_SECONDS)."
  type        = number
  default     = 15

  validation {
    condition     = var.poll_first_delay_seconds >= 1 && floor(var.poll_first_delay_seconds) == var.poll_first_delay_seconds
    error_message = "poll_first_delay_seconds must be a positive whole number."
  }
}

variable "poll_deadline_seconds" {
  description = "A Leanplum job still running this long after it started ends as TIMED_OUT (POLL_DEADLINE_SECONDS)."
  type        = number
  default     = 86400

  validation {
    condition     = var.poll_deadline_seconds >= 60 && floor(var.poll_deadline_seconds) == var.poll_deadline_seconds
    error_message = "poll_deadline_seconds must be a whole number of seconds, at least 60."
  }
}

variable "max_running_jobs" {
  description = "Leanplum import jobs running at once, across all files and instances (one per part): a file that finds every slot taken waits on the start queue (MAX_RUNNING_JOBS)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_running_jobs >= 1 && floor(var.max_running_jobs) == var.max_running_jobs
    error_message = "max_running_jobs must be a positive whole number."
  }
}

variable "max_queued_seconds" {
  description = "A file still waiting for a job slot this long after it was queued ends as TIMED_OUT (MAX_QUEUED_SECONDS). The parts it would import are kept at least this long plus the poll queue's retry window (parts_retention_days, checked)."
  type        = number
  default     = 259200

  validation {
    condition     = var.max_queued_seconds >= 60 && floor(var.max_queued_seconds) == var.max_queued_seconds
    error_message = "max_queued_seconds must be a whole number of seconds, at least 60."
  }
}

# ---------------------------------------------------------------------------------------------
# Leanplum apps: routing incoming prefixes to apps, each with its own key (functions/leanplum_apps.py)
# ---------------------------------------------------------------------------------------------

variable "leanplum_apps" {
  description = "Leanplum apps besides the default one (leanplum_app_id and its key), by name, e.g. { prod = { app_id = \"app_456\", prefixes = [\"incoming/prod/\"] } }: uploads under a prefix go to that app (the longest matching prefix wins; other uploads go to the default app). Builds LEANPLUM_APP_ROUTES and LEANPLUM_APP_IDS; each app gets its own Secret Manager secret, read by both functions as LEANPLUM_DEV_KEY_<NAME in upper case>. An app with no prefixes is still known to the poller (for jobs started before its route was removed). Names: lowercase letter, then up to 29 lowercase letters, digits or underscores; \"default\" is the default app's."
  type = map(object({
    app_id   = string
    prefixes = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.leanplum_apps) : can(regex("^[a-z][a-z0-9_]{0,29}$", name)) && name != "default"])
    error_message = "leanplum_apps names must match ^[a-z][a-z0-9_]{0,29}$ (they become part of LEANPLUM_DEV_KEY_<NAME>) and must not be \"default\" (the app of leanplum_app_id)."
  }

  validation {
    condition     = alltrue([for app in values(var.leanplum_apps) : can(regex("^[^,=[:space:]]+$", app.app_id))])
    error_message = "Each app_id in leanplum_apps must be non-empty, without commas, equals signs or spaces (LEANPLUM_APP_IDS is app=id,...)."
  }

  validation {
    condition     = alltrue(flatten([for app in values(var.leanplum_apps) : [for p in app.prefixes : can(regex("^[^,=[:space:]]+$", p))]]))
    error_message = "Each prefix in leanplum_apps must be non-empty, without commas, equals signs or spaces (LEANPLUM_APP_ROUTES is prefix=app,...)."
  }

  validation {
    condition     = length(flatten([for app in values(var.leanplum_apps) : app.prefixes])) == length(distinct(flatten([for app in values(var.leanplum_apps) : app.prefixes])))
    error_message = "A prefix may be routed to one app only."
  }
}

variable "dry_run_prefixes" {
  description = "Incoming prefixes whose uploads are validated, rewritten and reported, but sent to no Leanplum app (routed to the reserved target dry-run in LEANPLUM_APP_ROUTES), e.g. [\"incoming/check/\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.dry_run_prefixes : can(regex("^[^,=[:space:]]+$", p))]) && length(distinct(var.dry_run_prefixes)) == length(var.dry_run_prefixes)
    error_message = "dry_run_prefixes must be distinct, non-empty prefixes without commas, equals signs or spaces."
  }
}

# ---------------------------------------------------------------------------------------------
# The bucket Leanplum reads (LEANPLUM_BUCKET): provided by Leanplum, never created here
# ---------------------------------------------------------------------------------------------

variable "leanplum_bucket" {
  description = "Bucket Leanplum's import jobs read, as its support provides it (it may be in Leanplum's project): the ingest function copies the files Leanplum imports there, under leanplum_bucket_prefix, and names it in multi (LEANPLUM_BUCKET). Never created or changed here, besides the functions' grants on it (leanplum_bucket_iam). \"\" (the default) or \"none\": not used, Leanplum reads the parts in the state bucket."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "none"], var.leanplum_bucket) || can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", var.leanplum_bucket))
    error_message = "leanplum_bucket must be \"\" (not used) or a Cloud Storage bucket name (lowercase letters, digits, dots, hyphens, underscores)."
  }
}

variable "leanplum_bucket_prefix" {
  description = "Prefix of the importer's copies in leanplum_bucket (LEANPLUM_BUCKET_PREFIX): the functions' grants there are conditioned to it."
  type        = string
  default     = "leanplum-importer/"

  validation {
    condition     = endswith(var.leanplum_bucket_prefix, "/") && !startswith(var.leanplum_bucket_prefix, "/") && length(var.leanplum_bucket_prefix) > 1 && length(var.leanplum_bucket_prefix) <= 256 && !strcontains(var.leanplum_bucket_prefix, "\"")
    error_message = "leanplum_bucket_prefix must be a folder such as leanplum-importer/: it ends with \"/\", does not start with one, at most 256 characters, no quotes."
  }
}

variable "leanplum_bucket_cleanup" {
  description = "Delete the copies in leanplum_bucket once the file's jobs have ended (LEANPLUM_BUCKET_CLEANUP). false leaves them to Leanplum's own retention."
  type        = bool
  default     = true
}

variable "leanplum_bucket_iam" {
  description = "How the functions get access to leanplum_bucket, conditioned to leanplum_bucket_prefix: \"custom_role\" (default: Terraform grants two custom roles of this project holding exactly the permissions the code uses; the bucket must be in this project, since a project's custom role cannot be granted elsewhere), \"predefined_role\" (Terraform grants roles/storage.objectUser, which also works on a bucket in another project whose IAM policy the deployer may set) or \"external\" (Terraform grants nothing there: hand the leanplum_bucket_access output to the bucket's admins, e.g. Leanplum's). See infra/README.md, \"The bucket Leanplum reads\"."
  type        = string
  default     = "custom_role"

  validation {
    condition     = contains(["custom_role", "predefined_role", "external"], var.leanplum_bucket_iam)
    error_message = "leanplum_bucket_iam must be custom_role, predefined_role or external."
  }
}

# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue of the polls (the poll queue)
# ---------------------------------------------------------------------------------------------

variable "tasks_max_attempts" {
  description = "The queue's retry_config.max_attempts, also given to the poller as POLL_MAX_ATTEMPTS (its last attempt ends as TIMED_OUT). The retry schedule up to the last attempt must cover poll_deadline_seconds: the default 160 reaches about 25.8 h with the default backoff."
  type        = number
  default     = 160

  validation {
    # <= 1000: the retry-schedule computation in tasks.tf uses range(), limited to 1024 elements.
    condition     = var.tasks_max_attempts >= 2 && var.tasks_max_attempts <= 1000 && floor(var.tasks_max_attempts) == var.tasks_max_attempts
    error_message = "tasks_max_attempts must be a whole number between 2 and 1000 (a bounded retry budget)."
  }
}

variable "tasks_min_backoff_seconds" {
  description = "The queue's retry_config.min_backoff, in seconds: the first poll comes this long after the first attempt."
  type        = number
  default     = 15

  validation {
    condition     = var.tasks_min_backoff_seconds >= 1
    error_message = "tasks_min_backoff_seconds must be at least 1."
  }
}

variable "tasks_max_backoff_seconds" {
  description = "The queue's retry_config.max_backoff, in seconds: the steady poll interval of a long job."
  type        = number
  default     = 600

  validation {
    condition     = var.tasks_max_backoff_seconds >= 1 && var.tasks_max_backoff_seconds <= 3600
    error_message = "tasks_max_backoff_seconds must be between 1 and 3600."
  }
}

variable "tasks_max_doublings" {
  description = "The queue's retry_config.max_doublings."
  type        = number
  default     = 6

  validation {
    condition     = var.tasks_max_doublings >= 0 && var.tasks_max_doublings <= 16
    error_message = "tasks_max_doublings must be between 0 and 16."
  }
}

variable "tasks_max_dispatches_per_second" {
  description = "The queue's rate_limits.max_dispatches_per_second (polls of Leanplum per second across all files)."
  type        = number
  default     = 5

  validation {
    condition     = var.tasks_max_dispatches_per_second > 0 && var.tasks_max_dispatches_per_second <= 500
    error_message = "tasks_max_dispatches_per_second must be above 0 and at most 500."
  }
}

variable "tasks_max_concurrent_dispatches" {
  description = "The queue's rate_limits.max_concurrent_dispatches."
  type        = number
  default     = 10

  validation {
    condition     = var.tasks_max_concurrent_dispatches >= 1 && var.tasks_max_concurrent_dispatches <= 5000
    error_message = "tasks_max_concurrent_dispatches must be between 1 and 5000."
  }
}

# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue where files wait for a free job slot (the start queue)
# ---------------------------------------------------------------------------------------------

variable "start_queue_min_backoff_seconds" {
  description = "The start queue's retry_config.min_backoff, in seconds: a file that found every job slot taken tries again this long after."
  type        = number
  default     = 5

  validation {
    condition     = var.start_queue_min_backoff_seconds >= 1 && var.start_queue_min_backoff_seconds <= 3600
    error_message = "start_queue_min_backoff_seconds must be between 1 and 3600."
  }
}

variable "start_queue_max_backoff_seconds" {
  description = "The start queue's retry_config.max_backoff, in seconds: the steady interval at which a waiting file tries again, so the longest a free slot stays unused while files wait."
  type        = number
  default     = 60

  validation {
    condition     = var.start_queue_max_backoff_seconds >= 1 && var.start_queue_max_backoff_seconds <= 3600
    error_message = "start_queue_max_backoff_seconds must be between 1 and 3600."
  }
}

variable "start_queue_max_doublings" {
  description = "The start queue's retry_config.max_doublings (kept small: waiting files should reach max_backoff quickly and stay there)."
  type        = number
  default     = 3

  validation {
    condition     = var.start_queue_max_doublings >= 0 && var.start_queue_max_doublings <= 16 && floor(var.start_queue_max_doublings) == var.start_queue_max_doublings
    error_message = "start_queue_max_doublings must be a whole number between 0 and 16."
  }
}

variable "start_queue_max_dispatches_per_second" {
  description = "The start queue's rate_limits.max_dispatches_per_second (start attempts across all waiting files)."
  type        = number
  default     = 5

  validation {
    condition     = var.start_queue_max_dispatches_per_second > 0 && var.start_queue_max_dispatches_per_second <= 500
    error_message = "start_queue_max_dispatches_per_second must be above 0 and at most 500."
  }
}

variable "start_queue_max_concurrent_dispatches" {
  description = "The start queue's rate_limits.max_concurrent_dispatches (start attempts in flight at once)."
  type        = number
  default     = 10

  validation {
    condition     = var.start_queue_max_concurrent_dispatches >= 1 && var.start_queue_max_concurrent_dispatches <= 5000
    error_message = "start_queue_max_concurrent_dispatches must be between 1 and 5000."
  }
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub
# ---------------------------------------------------------------------------------------------

variable "dead_letter_max_delivery_attempts" {
  description = "Deliveries of a result message to the example subscription, and write attempts of the history's BigQuery subscription, before the message goes to its dead-letter topic (Pub/Sub allows 5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.dead_letter_max_delivery_attempts >= 5 && var.dead_letter_max_delivery_attempts <= 100
    error_message = "dead_letter_max_delivery_attempts must be between 5 and 100."
  }
}

variable "message_retention_duration" {
  description = "How long the subscriptions keep unacknowledged messages (Pub/Sub duration, 10 min to 7 days)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && try(tonumber(trimsuffix(var.message_retention_duration, "s")), 0) >= 600 && try(tonumber(trimsuffix(var.message_retention_duration, "s")), 0) <= 604800
    error_message = "message_retention_duration must be like \"604800s\", between 600s and 604800s."
  }
}

variable "uploader_members" {
  description = "IAM principals that drop files (people's groups, exporters' service accounts), e.g. [\"group:growth@example.com\", \"serviceAccount:exporter@PROJECT.iam.gserviceaccount.com\"]: granted roles/storage.objectUser on the landing bucket, conditioned to objects under incoming_prefix. They get nothing on the state bucket (records, content claims, archive, reports, parts)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.uploader_members : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])
    error_message = "uploader_members must be IAM principals such as group:NAME@DOMAIN; public members (allUsers, allAuthenticatedUsers) are refused."
  }
}

# ---------------------------------------------------------------------------------------------
# Import history in BigQuery (history.tf)
# ---------------------------------------------------------------------------------------------

variable "enable_history" {
  description = "Keep every result message in a BigQuery table (dataset, table, BigQuery subscription on the results topic, its dead-letter topic, the Pub/Sub service agent's grants). false removes them; an existing table is only deleted once history_deletion_protection is false."
  type        = bool
  default     = true
}

variable "history_dataset_id" {
  description = "BigQuery dataset of the history. Defaults to name_prefix with underscores for hyphens, plus \"_history\" (lp_importer_history)."
  type        = string
  default     = null

  validation {
    condition     = var.history_dataset_id == null || try(can(regex("^[A-Za-z0-9_]+$", var.history_dataset_id)) && length(var.history_dataset_id) <= 1024, false)
    error_message = "history_dataset_id must be 1 to 1024 letters, digits and underscores."
  }
}

variable "history_location" {
  description = "BigQuery location of the history dataset (a region such as europe-west1, or US or EU). Defaults to var.region."
  type        = string
  default     = null
}

variable "history_partition_expiration_days" {
  description = "Days a daily partition of the history is kept (rows older than this are deleted by BigQuery). null (the default): kept forever."
  type        = number
  default     = null

  validation {
    condition     = var.history_partition_expiration_days == null || try(var.history_partition_expiration_days >= 1 && floor(var.history_partition_expiration_days) == var.history_partition_expiration_days, false)
    error_message = "history_partition_expiration_days must be null or a whole number of days, at least 1."
  }
}

variable "history_deletion_protection" {
  description = "Refuse to delete the history table (terraform destroy, or enable_history = false). Set false and apply first to let it go."
  type        = bool
  default     = true
}

variable "history_reader_members" {
  description = "IAM principals that query the history, e.g. [\"group:data@example.com\"]: granted roles/bigquery.dataViewer on the history dataset (running queries also needs roles/bigquery.jobUser on some project)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.history_reader_members : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])
    error_message = "history_reader_members must be IAM principals such as group:NAME@DOMAIN; public members (allUsers, allAuthenticatedUsers) are refused."
  }
}

# ---------------------------------------------------------------------------------------------
# Alerts (alerts.tf)
# ---------------------------------------------------------------------------------------------

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channels the alert policies notify, as projects/PROJECT/notificationChannels/ID (create them in the console or with google_monitoring_notification_channel). Empty (the default): the policies exist and open incidents, but notify nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "alert_notification_channels must be full names such as projects/my-project/notificationChannels/1234567890."
  }
}

# ---------------------------------------------------------------------------------------------
# Secret Manager
# ---------------------------------------------------------------------------------------------

variable "secret_replica_locations" {
  description = "Regions of a user-managed replication of the Leanplum key secrets (the default app's and one per leanplum_apps entry), e.g. [\"europe-west1\", \"europe-west4\"]. Empty (the default): automatic replication, which an organisation policy restricting resource locations (gcp.resourceLocations) refuses."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for l in var.secret_replica_locations : can(regex("^[a-z]+-[a-z]+[0-9]+$", l))]) && length(distinct(var.secret_replica_locations)) == length(var.secret_replica_locations)
    error_message = "secret_replica_locations must be distinct Google Cloud regions such as europe-west1."
  }
}

# ---------------------------------------------------------------------------------------------
# First apply on a fresh project
# ---------------------------------------------------------------------------------------------

variable "propagation_wait_seconds" {
  description = "How long the first apply waits between making IAM grants (and enabling Eventarc) and the function deployments that use them. Google documents that IAM changes typically propagate in 2 minutes, potentially 7 or more. Each wait runs once, when its grants are created, not on every apply."
  type        = number
  default     = 180

  validation {
    condition     = var.propagation_wait_seconds >= 0 && var.propagation_wait_seconds <= 900 && floor(var.propagation_wait_seconds) == var.propagation_wait_seconds
    error_message = "propagation_wait_seconds must be a whole number between 0 and 900."
  }
}
