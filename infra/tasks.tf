# The manifest's queues with its retry policy. A queue entry may also name its own rate limits
# (max_dispatches_per_second, max_concurrent_dispatches); otherwise the variables' defaults apply.
resource "google_cloud_tasks_queue" "queue" {
  for_each = local.queues

  name     = each.key
  location = var.region

  retry_config {
    max_attempts  = each.value.max_attempts
    min_backoff   = "${each.value.min_backoff_s}s"
    max_backoff   = "${each.value.max_backoff_s}s"
    max_doublings = each.value.max_doublings
  }

  rate_limits {
    max_dispatches_per_second = coalesce(try(each.value.max_dispatches_per_second, null), var.queue_max_dispatches_per_second)
    max_concurrent_dispatches = coalesce(try(each.value.max_concurrent_dispatches, null), var.queue_max_concurrent_dispatches)
  }

  # A dispatch the handler never sees (refused by IAM, timed out, no instance) shows only in the queue's log.
  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.api]
}
