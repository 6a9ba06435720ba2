# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue of the polls (TASKS_QUEUE of both functions: the ingest function and, for
# queued files, the poller create a poll task once a job started). A poll that finds the
# Leanplum job still running fails, and the queue's retry schedule is the polling schedule:
# min_backoff, doubled max_doublings times, then growing linearly, capped at max_backoff, for at
# most max_attempts attempts. The same max_attempts reaches the poller as POLL_MAX_ATTEMPTS,
# whose last attempt ends as TIMED_OUT.
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
# dispatch_deadline (HTTP default 10 min, 15 s to 30 min); the functions set 1800 s, at
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

# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue where files wait for a free Leanplum job slot (START_QUEUE of the ingest
# function). At most max_running_jobs jobs run at once; a file that finds every slot taken gets
# a start task here, served by the poller, which fails while no slot is free, so the queue's
# retry schedule is the waiting schedule: min_backoff, doubled max_doublings times, capped at
# max_backoff. Attempts are unlimited: the code, not the queue, ends a file that waited longer
# than max_queued_seconds (TIMED_OUT), so the task must still be there to tell it so.
# max_retry_duration is left unset (no limit): with unlimited attempts it would never apply.
# The start tasks call the same URL as the poll tasks, with the same OIDC identity (the tasks
# service account's run.invoker grant on the poller covers both).
# ---------------------------------------------------------------------------------------------

resource "google_cloud_tasks_queue" "start" {
  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-start"

  rate_limits {
    max_dispatches_per_second = var.start_queue_max_dispatches_per_second
    max_concurrent_dispatches = var.start_queue_max_concurrent_dispatches
  }

  retry_config {
    max_attempts  = -1
    min_backoff   = "${var.start_queue_min_backoff_seconds}s"
    max_backoff   = "${var.start_queue_max_backoff_seconds}s"
    max_doublings = var.start_queue_max_doublings
  }

  # A waiting file tries again every max_backoff (a minute by default) for up to
  # max_queued_seconds (3 days): logging every attempt would write thousands of entries per
  # waiting file. The poller logs each attempt itself; Cloud Tasks logs a sample.
  stackdriver_logging_config {
    sampling_ratio = 0.1
  }

  lifecycle {
    precondition {
      condition     = var.start_queue_min_backoff_seconds <= var.start_queue_max_backoff_seconds
      error_message = "start_queue_min_backoff_seconds must not exceed start_queue_max_backoff_seconds."
    }
    precondition {
      condition     = var.start_queue_max_backoff_seconds < var.max_queued_seconds
      error_message = "start_queue_max_backoff_seconds (${var.start_queue_max_backoff_seconds}s) must be shorter than max_queued_seconds (${var.max_queued_seconds}s): a waiting file must be tried several times before it times out."
    }
  }

  depends_on = [google_project_service.enabled]
}
