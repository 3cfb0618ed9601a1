resource "google_pubsub_topic" "topic" {
  for_each = local.topics

  name = each.key

  depends_on = [google_project_service.api]
}

# Where a message lands after var.pubsub_max_delivery_attempts failed deliveries, instead of being retried until
# it expires. docs/operations.md shows how to inspect and replay it.
resource "google_pubsub_topic" "dead_letter" {
  for_each = local.topics

  name = "${each.key}-dead-letter"

  depends_on = [google_project_service.api]
}

# A topic without a subscription drops what it receives: this one keeps dead letters for a week, acknowledged or
# not, so they can be read, replayed, or sought back to after a fix.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = google_pubsub_topic.dead_letter

  name                       = each.value.name
  topic                      = each.value.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publish" {
  for_each = google_pubsub_topic.dead_letter

  topic  = each.value.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Eventarc creates and owns the push subscription behind each Pub/Sub-triggered function, and neither the Cloud
# Functions nor the Eventarc API accepts a dead-letter or retry policy for it. So once the trigger exists its
# subscription gets both through gcloud, and again whenever the trigger is replaced (a new trigger comes with a new
# subscription). This step needs an authenticated gcloud where `terraform apply` runs.
resource "terraform_data" "eventarc_dead_letter" {
  for_each = local.pubsub_functions

  triggers_replace = [
    google_cloudfunctions2_function.function[each.key].event_trigger[0].trigger,
    google_pubsub_topic.dead_letter[each.value.topic].id,
    var.pubsub_max_delivery_attempts,
    var.pubsub_min_retry_delay,
    var.pubsub_max_retry_delay,
  ]

  provisioner "local-exec" {
    interpreter = ["bash", "-euo", "pipefail", "-c"]
    command     = <<-EOT
      subscription=$(gcloud eventarc triggers describe "$TRIGGER" --location="$REGION" --project="$PROJECT" \
        --format='value(transport.pubsub.subscription)')
      gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
        --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
        --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY"
      gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_SERVICE_AGENT" --role=roles/pubsub.subscriber >/dev/null
    EOT
    environment = {
      PROJECT               = var.project_id
      REGION                = var.region
      TRIGGER               = basename(google_cloudfunctions2_function.function[each.key].event_trigger[0].trigger)
      DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter[each.value.topic].id
      MAX_DELIVERY_ATTEMPTS = var.pubsub_max_delivery_attempts
      MIN_RETRY_DELAY       = var.pubsub_min_retry_delay
      MAX_RETRY_DELAY       = var.pubsub_max_retry_delay
      PUBSUB_SERVICE_AGENT  = google_project_service_identity.pubsub.email
    }
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publish]
}

# Scheduled functions are ticked by publishing an empty JSON object to their topic, as the local stack does.
resource "google_cloud_scheduler_job" "tick" {
  for_each = local.scheduled_functions

  name      = each.key
  region    = var.region
  schedule  = each.value.schedule
  time_zone = var.scheduler_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topic[each.value.topic].id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.api]
}
