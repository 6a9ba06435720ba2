# ---------------------------------------------------------------------------------------------
# Import history in BigQuery (optional, on by default: var.enable_history). A BigQuery
# subscription on the results topic writes every result message into one table; no code runs.
#
# - The table's schema is infra/history/results-table.schema.json, read here with file() and
#   by tests/infra/test_history_schema.py, which keeps it in step with
#   schemas/result-message.schema.json (every field a column of a compatible type, every column
#   a field, in both directions) and with the messages the code builds.
# - use_table_schema: each top-level field of the JSON message goes to the column of the same
#   name (nested records for file, counts, jobs, timings and uris). drop_unknown_fields = false:
#   a message with a field the table lacks is refused, retried and dead-lettered rather than
#   written without it, so nothing is silently lost (and the dead-letter alert fires).
# - write_metadata: Pub/Sub adds subscription_name, message_id, publish_time (the time the
#   result was published, the partitioning column) and attributes (status, bucket, object).
# - The Pub/Sub service agent writes the rows: roles/bigquery.dataEditor on this table only.
# ---------------------------------------------------------------------------------------------

locals {
  history_dataset_id = coalesce(var.history_dataset_id, "${replace(var.name_prefix, "-", "_")}_history")
  history_location   = coalesce(var.history_location, var.region)
  history_schema     = file("${path.module}/history/results-table.schema.json")
}

resource "google_bigquery_dataset" "history" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption; the rows are the result messages (file names, counts, statuses), no secrets or event data (see infra/README.md).
  count = var.enable_history ? 1 : 0

  project     = var.project_id
  dataset_id  = local.history_dataset_id
  location    = local.history_location
  description = "History of the Leanplum importer: one row per result message (table results)."
  labels      = local.labels

  # Never drop the history with the dataset: `terraform destroy` stops while the table is there.
  delete_contents_on_destroy = false

  depends_on = [google_project_service.enabled]
}

resource "google_bigquery_table" "history" {
  # checkov:skip=CKV_GCP_80: Google-managed encryption; the rows are the result messages (file names, counts, statuses), no secrets or event data (see infra/README.md).
  count = var.enable_history ? 1 : 0

  project     = var.project_id
  dataset_id  = google_bigquery_dataset.history[0].dataset_id
  table_id    = "results"
  description = "One row per result message (schemas/result-message.schema.json) plus Pub/Sub's metadata, written by the BigQuery subscription ${var.name_prefix}-history. At least once: dedupe on result_id."
  labels      = local.labels

  schema = local.history_schema

  # Daily partitions on the time the result was published (a metadata column Pub/Sub fills).
  time_partitioning {
    type          = "DAY"
    field         = "publish_time"
    expiration_ms = var.history_partition_expiration_days == null ? null : var.history_partition_expiration_days * 86400000
  }

  # Most questions are about one status ("what failed this week").
  clustering = ["status"]

  deletion_protection = var.history_deletion_protection
}

# Only the Pub/Sub service agent writes, and only to this table: dataEditor holds the
# tables.get (the schema it maps messages to) and tables.updateData the subscription uses.
resource "google_bigquery_table_iam_member" "pubsub_agent_history_writer" {
  count = var.enable_history ? 1 : 0

  project    = var.project_id
  dataset_id = google_bigquery_table.history[0].dataset_id
  table_id   = google_bigquery_table.history[0].table_id
  role       = "roles/bigquery.dataEditor"
  member     = local.pubsub_service_agent
}

# People and tools that query the history: read the dataset, nothing else.
resource "google_bigquery_dataset_iam_member" "history_readers" {
  for_each = var.enable_history ? toset(var.history_reader_members) : toset([])

  project    = var.project_id
  dataset_id = google_bigquery_dataset.history[0].dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

# Messages the table refuses (after dead_letter_max_delivery_attempts writes) land here, with
# their data and attributes intact, to be published again once the table or message is fixed.
resource "google_pubsub_topic" "history_dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; holds copies of result messages only.
  count = var.enable_history ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-history-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.enabled]
}

# A topic without a subscription drops what it receives: this one keeps the refused messages.
resource "google_pubsub_subscription" "history_dead_letter" {
  count = var.enable_history ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-history-dead-letter"
  topic   = google_pubsub_topic.history_dead_letter[0].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: the Pub/Sub service agent publishes to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "pubsub_agent_history_dead_letter_publisher" {
  count = var.enable_history ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.history_dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# Creating a BigQuery subscription checks that the service agent can write the table: wait for
# the grant to propagate (see waits.tf) before the subscription is created.
resource "time_sleep" "history_iam" {
  count = var.enable_history ? 1 : 0

  create_duration = local.propagation_wait

  triggers = {
    table        = google_bigquery_table_iam_member.pubsub_agent_history_writer[0].table_id
    dead_letters = google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher[0].topic
  }

  depends_on = [
    google_bigquery_table_iam_member.pubsub_agent_history_writer,
    google_pubsub_topic_iam_member.pubsub_agent_history_dead_letter_publisher,
  ]
}

resource "google_pubsub_subscription" "history" {
  count = var.enable_history ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-history"
  topic   = google_pubsub_topic.results.id
  labels  = local.labels

  message_retention_duration = var.message_retention_duration

  bigquery_config {
    table               = "${google_bigquery_table.history[0].project}.${google_bigquery_table.history[0].dataset_id}.${google_bigquery_table.history[0].table_id}"
    use_table_schema    = true
    use_topic_schema    = false
    write_metadata      = true
    drop_unknown_fields = false
  }

  expiration_policy {
    ttl = "" # never expires for inactivity (a quiet month must not delete the history's feed)
  }

  # A refused write is retried with backoff, then dead-lettered.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.history_dead_letter[0].id
    max_delivery_attempts = var.dead_letter_max_delivery_attempts
  }

  depends_on = [time_sleep.history_iam]
}

# Dead-lettering also needs the service agent to acknowledge (subscribe to) the source
# subscription. Made after the subscription exists: a message's first refused writes are retried
# meanwhile, so none is lost.
resource "google_pubsub_subscription_iam_member" "pubsub_agent_history_subscriber" {
  count = var.enable_history ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.history[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
