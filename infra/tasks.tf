# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue of the poller. A poll that finds the Leanplum job still running fails, and
# the queue's retry schedule is the polling schedule: min_backoff, doubled max_doublings times,
# then growing linearly, capped at max_backoff, for at most max_attempts attempts. The same
# max_attempts reaches the poller as POLL_MAX_ATTEMPTS, whose last attempt ends as TIMED_OUT.
# ---------------------------------------------------------------------------------------------

locals {
  # Seconds between attempt i+1 and attempt i+2, by Cloud Tasks' documented schedule.
  tasks_retry_intervals = [
    for i in range(var.tasks_max_attempts - 1) : min(
      var.tasks_max_backoff_seconds,
      i <= var.tasks_max_doublings
      ? var.tasks_min_backoff_seconds * pow(2, i)
      : var.tasks_min_backoff_seconds * pow(2, var.tasks_max_doublings) * (i - var.tasks_max_doublings + 1)
    )
  ]
  # When the last attempt comes, counted from the first one.
  tasks_last_attempt_after_seconds = sum(concat([0], local.tasks_retry_intervals))
  # A task is dropped once it has used max_attempts AND max_retry_duration: keep the duration a
  # little above the poll deadline, so the attempt count decides.
  tasks_max_retry_duration_seconds = var.poll_deadline_seconds + 3600
}

# No dispatch deadline here: Cloud Tasks has none per queue. Each task carries its own
# dispatch_deadline (HTTP default 10 min, 15 s to 30 min); the ingest function sets 1800 s, at
# least poller_timeout_seconds, so the poller's own timeout ends a slow poll (infra/README.md).
resource "google_cloud_tasks_queue" "poll" {
  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-poll"

  rate_limits {
    max_dispatches_per_second = var.tasks_max_dispatches_per_second
    max_concurrent_dispatches = var.tasks_max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = var.tasks_max_attempts
    max_retry_duration = "${local.tasks_max_retry_duration_seconds}s"
    min_backoff        = "${var.tasks_min_backoff_seconds}s"
    max_backoff        = "${var.tasks_max_backoff_seconds}s"
    max_doublings      = var.tasks_max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  lifecycle {
    precondition {
      condition     = var.tasks_min_backoff_seconds <= var.tasks_max_backoff_seconds
      error_message = "tasks_min_backoff_seconds must not exceed tasks_max_backoff_seconds."
    }
    precondition {
      condition     = local.tasks_last_attempt_after_seconds >= var.poll_deadline_seconds
      error_message = "The queue's retry budget ends ${local.tasks_last_attempt_after_seconds}s after the first poll, before poll_deadline_seconds (${var.poll_deadline_seconds}s): raise tasks_max_attempts (or tasks_max_backoff_seconds)."
    }
  }

  depends_on = [google_project_service.enabled]
}
