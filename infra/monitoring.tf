# Someone is paged when it breaks. Each alert policy below pages var.notification_channels (the on-call engineer);
# the two crisis policies also page var.crisis_notification_channels (whoever leads trust and safety). What each
# alert means and the first steps are in docs/operations.md ("Alerts"), which every policy's documentation points to.
#
# Log-based metrics read the JSON lines the functions write through shared/logging.py `event(log, "<message>",
# field=...)`: tests/unit/test_deployment_agrees.py checks that every `jsonPayload.message` and every
# `jsonPayload.<field>` named here is one the code really logs. The others are Google's own metrics (Cloud Run
# requests, Pub/Sub subscriptions, Cloud SQL).

locals {
  # Function log lines: Cloud Functions (2nd gen) run on Cloud Run, which files stdout under the revision.
  function_logs = "resource.type=\"cloud_run_revision\""
  runbook       = "docs/operations.md, section Alerts"

  # Where "near the budget" starts: 90 % of what the functions may use (max_connections less the reserve).
  db_connections_alert = floor(0.9 * (var.db_max_connections - var.db_reserved_connections))

  all_channels    = var.notification_channels
  crisis_channels = distinct(concat(var.notification_channels, var.crisis_notification_channels))
}

# -- log-based metrics ---------------------------------------------------------------------------------------------

# Failed calls the functions answered themselves with 5xx (503 outages, 500 bugs), by error code: the 5xx alert's
# first clue. Cloud Run's own request count (below) also sees timeouts and crashes, which no line of ours reports.
resource "google_logging_metric" "request_failures" {
  name   = "halo/request_failures"
  filter = "${local.function_logs} AND jsonPayload.message=\"request failed\" AND jsonPayload.status>=500"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Halo: requests failed with 5xx, by code"

    labels {
      key         = "code"
      value_type  = "STRING"
      description = "The contract's error code (unavailable, internal, ...)."
    }
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "The function's Cloud Run service."
    }
  }

  label_extractors = {
    code    = "EXTRACT(jsonPayload.code)"
    service = "EXTRACT(resource.labels.service_name)"
  }
}

# The age of the oldest outbox row not yet published, as each outbox sweep (every minute) reports it.
resource "google_logging_metric" "outbox_oldest_unpublished" {
  name   = "halo/outbox_oldest_unpublished_s"
  filter = "${local.function_logs} AND jsonPayload.message=\"outbox sweep\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Halo: age of the oldest unpublished outbox row"
  }

  value_extractor = "EXTRACT(jsonPayload.oldest_unpublished_s)"

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 1
    }
  }
}

# Crisis alerts no admin has acknowledged within 5 minutes, as each outbox sweep counts them in PostgreSQL.
resource "google_logging_metric" "crisis_unacknowledged" {
  name   = "halo/crisis_alerts_unacknowledged"
  filter = "${local.function_logs} AND jsonPayload.message=\"outbox sweep\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "Halo: crisis alerts unacknowledged for over 5 minutes"
  }

  value_extractor = "EXTRACT(jsonPayload.unacknowledged_alerts)"

  bucket_options {
    linear_buckets {
      num_finite_buckets = 20
      width              = 1
      offset             = 0
    }
  }
}

# Task handlers that answered 503 so Cloud Tasks retries (a timer that cannot do its work yet), by handler and code.
resource "google_logging_metric" "task_retries" {
  name   = "halo/task_retries"
  filter = "${local.function_logs} AND jsonPayload.message=\"task will retry\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Halo: task retries, by handler"

    labels {
      key         = "function"
      value_type  = "STRING"
      description = "The task handler."
    }
    labels {
      key         = "code"
      value_type  = "STRING"
      description = "Why it asked to be retried (the error code)."
    }
  }

  label_extractors = {
    function = "EXTRACT(jsonPayload.function)"
    code     = "EXTRACT(jsonPayload.code)"
  }
}

# Crisis signals raised (a client's message matched the safety phrases), by category and by admins on duty.
resource "google_logging_metric" "crisis_signals" {
  name   = "halo/crisis_signals"
  filter = "${local.function_logs} AND jsonPayload.message=\"safety signal raised\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Halo: crisis signals raised"

    labels {
      key         = "category"
      value_type  = "STRING"
      description = "The safety category of the phrase that matched."
    }
    labels {
      key         = "admins"
      value_type  = "STRING"
      description = "How many admins were on duty to be pushed (0: nobody)."
    }
  }

  label_extractors = {
    category = "EXTRACT(jsonPayload.category)"
    admins   = "EXTRACT(jsonPayload.admins)"
  }
}

# Xendit callbacks (invoice or refund) and refund lookups whose money matched nothing we ordered or refunded.
resource "google_logging_metric" "payments_quarantined" {
  name   = "halo/payments_quarantined"
  filter = "${local.function_logs} AND jsonPayload.message=(\"xendit callback\" OR \"xendit refund callback\" OR \"refund reconciled\") AND jsonPayload.outcome=\"quarantined\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Halo: payments quarantined, by reason"

    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "Why the money could not be matched (amount_mismatch, unknown_transaction, ...)."
    }
  }

  label_extractors = {
    reason = "EXTRACT(jsonPayload.reason)"
  }
}

# -- alert policies ------------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "server_errors" {
  display_name          = "Halo: 5xx rate of a function"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.all_channels

  conditions {
    display_name = "More than ${var.server_error_percent} % of a function's requests answered 5xx for 5 minutes"

    condition_threshold {
      filter             = "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.server_error_percent / 100
      duration           = "300s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function answers 5xx to more than ${var.server_error_percent} % of its calls: an outage of a managed service (503 `unavailable`) or a bug (500 `internal`). The metric `halo/request_failures` splits them by code. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "Halo: Pub/Sub dead letters waiting"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.all_channels

  conditions {
    display_name = "A dead-letter subscription holds a message"

    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id=monitoring.regex.full_match(\".*-dead-letter\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A Pub/Sub message failed every delivery attempt and moved to a `*-dead-letter` subscription: a handler keeps failing on it (a bug, or an outage longer than the retries). Inspect, fix, replay. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "outbox_backlog" {
  display_name          = "Halo: outbox backlog is old"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.all_channels

  conditions {
    display_name = "An unpublished outbox row is older than ${var.outbox_backlog_alert_s} s"

    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.outbox_oldest_unpublished.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.outbox_backlog_alert_s
      duration        = "120s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  # A sweep that stops running reports nothing, which the threshold above would take for a healthy outbox.
  conditions {
    display_name = "No outbox sweep has reported for 10 minutes"

    condition_absent {
      filter   = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.outbox_oldest_unpublished.name}\""
      duration = "600s"

      # One series for all revisions: a deploy retires the old revision's series, which must not read as absence.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_COUNT"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Committed side effects (Firestore documents the apps wait for, pushes, timers) are not going out: the oldest unpublished outbox row is older than ${var.outbox_backlog_alert_s} s, or the sweep that reports it stopped. Look at `outbox rows failed` lines and the `last_error` of pending rows. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "task_retries" {
  display_name          = "Halo: Cloud Tasks retries piling up"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.all_channels

  conditions {
    display_name = "A task handler asked for more than ${var.task_retry_alert_count} retries in 5 minutes, for 10 minutes"

    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.task_retries.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.task_retry_alert_count
      duration        = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.function"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Timers keep failing and being retried (`task will retry`, by `function` and `code`): sessions, offers or payments are late to end. Usually an outage (code `unavailable`); the queues keep retrying. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "database_connections" {
  display_name          = "Halo: Cloud SQL connections near the budget"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.all_channels

  conditions {
    display_name = "More than ${local.db_connections_alert} PostgreSQL connections for 5 minutes"

    condition_threshold {
      filter          = "resource.type=\"cloudsql_database\" AND resource.labels.database_id=\"${var.project_id}:${google_sql_database_instance.halo.name}\" AND metric.type=\"cloudsql.googleapis.com/database/postgresql/num_backends\""
      comparison      = "COMPARISON_GT"
      threshold_value = local.db_connections_alert
      duration        = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "PostgreSQL holds more than 90 % of the connections the functions may use (max_connections ${var.db_max_connections} less ${var.db_reserved_connections} reserved). Past the budget, new connections are refused and requests answer 503. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "crisis_unacknowledged" {
  display_name          = "Halo: crisis alert unacknowledged for 5 minutes"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.crisis_channels

  conditions {
    display_name = "A crisis alert has waited over 5 minutes for an admin"

    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.crisis_unacknowledged.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A client's message matched the crisis phrases more than 5 minutes ago and no admin has acknowledged the alert in the control center. Someone may need help now: reach an admin, or open the alert yourself. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "crisis_no_admin_on_duty" {
  display_name          = "Halo: crisis signal with no admin on duty"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.crisis_channels

  conditions {
    display_name = "A crisis signal was raised while no admin was on duty (escalated to every admin)"

    condition_matched_log {
      filter = "${local.function_logs} AND severity=ERROR AND jsonPayload.message=\"crisis signal escalated\""
      label_extractors = {
        category      = "EXTRACT(jsonPayload.category)"
        alert         = "EXTRACT(jsonPayload.alert)"
        admins_pushed = "EXTRACT(jsonPayload.admins_pushed)"
      }
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A crisis signal was raised and nobody was on duty, so every admin was pushed and nobody in particular is on it. Put an admin on duty (`admin_admins` set_on_duty) and have them open the alert. Runbook: ${local.runbook}."
  }
}

resource "google_monitoring_alert_policy" "payments_quarantined" {
  display_name          = "Halo: payment quarantined"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.all_channels

  conditions {
    display_name = "Xendit reported money that matched nothing we ordered or refunded"

    condition_matched_log {
      filter = google_logging_metric.payments_quarantined.filter
      label_extractors = {
        reason = "EXTRACT(jsonPayload.reason)"
      }
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A Xendit callback or refund lookup was quarantined (its `reason` says why): money moved that we could not match, and nothing was credited or refunded for it. Review it with `admin_payment_events?status=unreviewed`. Runbook: ${local.runbook}."
  }
}

# -- dashboard -----------------------------------------------------------------------------------------------------

locals {
  dashboard_charts = [
    {
      title  = "5xx answers per second, by function"
      filter = "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      align  = "ALIGN_RATE"
      reduce = "REDUCE_SUM"
      group  = ["resource.label.service_name"]
    },
    {
      title  = "Requests failed with 5xx, by error code"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.request_failures.name}\""
      align  = "ALIGN_SUM"
      reduce = "REDUCE_SUM"
      group  = ["metric.label.code"]
    },
    {
      title  = "Dead letters waiting, by subscription"
      filter = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id=monitoring.regex.full_match(\".*-dead-letter\")"
      align  = "ALIGN_MAX"
      reduce = "REDUCE_SUM"
      group  = ["resource.label.subscription_id"]
    },
    {
      title  = "Oldest unpublished outbox row (s)"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.outbox_oldest_unpublished.name}\""
      align  = "ALIGN_PERCENTILE_99"
      reduce = "REDUCE_MAX"
      group  = []
    },
    {
      title  = "Task retries, by handler"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.task_retries.name}\""
      align  = "ALIGN_SUM"
      reduce = "REDUCE_SUM"
      group  = ["metric.label.function"]
    },
    {
      title  = "PostgreSQL connections (alert at ${local.db_connections_alert})"
      filter = "resource.type=\"cloudsql_database\" AND metric.type=\"cloudsql.googleapis.com/database/postgresql/num_backends\""
      align  = "ALIGN_MAX"
      reduce = "REDUCE_SUM"
      group  = []
    },
    {
      title  = "Crisis signals, by admins on duty"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.crisis_signals.name}\""
      align  = "ALIGN_SUM"
      reduce = "REDUCE_SUM"
      group  = ["metric.label.admins"]
    },
    {
      title  = "Crisis alerts unacknowledged over 5 minutes"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.crisis_unacknowledged.name}\""
      align  = "ALIGN_PERCENTILE_99"
      reduce = "REDUCE_MAX"
      group  = []
    },
    {
      title  = "Payments quarantined, by reason"
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.payments_quarantined.name}\""
      align  = "ALIGN_SUM"
      reduce = "REDUCE_SUM"
      group  = ["metric.label.reason"]
    },
  ]
}

resource "google_monitoring_dashboard" "halo" {
  dashboard_json = jsonencode({
    displayName = "Halo Bestie: on call"
    mosaicLayout = {
      columns = 12
      tiles = [
        for index, chart in local.dashboard_charts : {
          xPos   = (index % 3) * 4
          yPos   = floor(index / 3) * 4
          width  = 4
          height = 4
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = chart.filter
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = chart.align
                      crossSeriesReducer = chart.reduce
                      groupByFields      = chart.group
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })

  depends_on = [google_project_service.api]
}
