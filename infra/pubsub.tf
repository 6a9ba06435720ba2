# ---------------------------------------------------------------------------------------------
# Results: one JSON message per imported file. No Pub/Sub schema is attached: Pub/Sub schemas
# are AVRO or PROTOCOL_BUFFER only, and the message's contract is a JSON Schema
# (schemas/result-message.schema.json), checked by the project's contract tests instead.
# ---------------------------------------------------------------------------------------------

resource "google_pubsub_topic" "results" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; result messages carry file names and counts, no secrets or event data (see infra/README.md).
  project = var.project_id
  name    = "${var.name_prefix}-results"
  labels  = local.labels

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; holds copies of result messages only.
  project = var.project_id
  name    = "${var.name_prefix}-results-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.enabled]
}

# An example consumer of the results. Messages it fails to acknowledge
# dead_letter_max_delivery_attempts times go to the dead-letter topic.
resource "google_pubsub_subscription" "results_example" {
  project = var.project_id
  name    = "${var.name_prefix}-results-example"
  topic   = google_pubsub_topic.results.id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = "" # never expires for inactivity
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.dead_letter_max_delivery_attempts
  }
}

# A topic without a subscription drops what it receives: this one keeps dead letters for review.
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = "${var.name_prefix}-results-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: the Pub/Sub service agent republishes to the dead-letter topic and must be able
# to acknowledge (subscribe to) the source subscription.
resource "google_pubsub_topic_iam_member" "pubsub_agent_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_results_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.results_example.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
