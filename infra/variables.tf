variable "project_id" {
  description = "The Google Cloud project that hosts Halo Bestie (also its Firebase project)."
  type        = string
}

variable "region" {
  description = "Where everything regional runs: functions, Cloud SQL, queues, Firestore, secrets (Jakarta by default, close to the users and keeping health data in Indonesia)."
  type        = string
  default     = "asia-southeast2"
}

variable "control_center_invoker" {
  description = <<-EOT
    The one IAM member allowed to invoke the admin functions, e.g. `serviceAccount:control-center@PROJECT.iam.gserviceaccount.com`
    (a control-center backend that sends its Google ID token in `X-Serverless-Authorization` and the admin's Firebase ID token
    in `Authorization`), or the IAP service agent `serviceAccount:service-PROJECT_NUMBER@gcp-sa-iap.iam.gserviceaccount.com`
    when the control center is served through an external Application Load Balancer with a serverless NEG and IAP.
  EOT
  type        = string

  validation {
    condition     = can(regex("^(user|group|serviceAccount|domain):", var.control_center_invoker))
    error_message = "control_center_invoker must be an IAM member (user:, group:, serviceAccount: or domain:); admin functions are never public."
  }
}

variable "http_min_instances" {
  description = "Warm instances per app-facing function the manifest marks warm (functions/manifest.py); 0 trades their latency for cost in a staging project."
  type        = number
  default     = 1
}

variable "db_instance_name" {
  description = "Cloud SQL instance name (a deleted name cannot be reused for a week)."
  type        = string
  default     = "halo-postgres"
}

variable "db_tier" {
  description = "Cloud SQL machine type: 4 vCPUs and 26 GB hold db_max_connections (about 12 MB each, 12 GB at 1000, beside the shared buffers) and the queries of as many busy instances."
  type        = string
  default     = "db-custom-4-26624"
}

variable "db_availability_type" {
  description = "REGIONAL keeps a standby in a second zone: sessions are paid and time-boxed, an outage is a refund."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.db_availability_type)
    error_message = "db_availability_type is REGIONAL or ZONAL."
  }
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections (changing it restarts the instance). Each function instance holds at most its pool size (the pool's cap), so this less db_reserved_connections bounds the sum of max instances x pool size over all functions (infra/functions.tf, trigger_class)."
  type        = number
  default     = 1000
}

variable "db_reserved_connections" {
  description = "Connections the functions' budget leaves free: PostgreSQL's superuser slots and Cloud SQL's own (about 10), the migration job, operators' psql sessions and Query Insights, with room to spare."
  type        = number
  default     = 50

  validation {
    condition     = var.db_reserved_connections >= 20
    error_message = "Keep at least 20 connections for Cloud SQL itself, the migration job and an operator."
  }
}

variable "connector_cidr" {
  description = "An unused /28 in the VPC for the Serverless VPC Access connector."
  type        = string
  default     = "10.8.0.0/28"
}

variable "xendit_secret_key_version" {
  description = "Secret Manager version of the Xendit secret key the functions read; pin a number to roll every function onto a new value at once."
  type        = string
  default     = "latest"
}

variable "xendit_callback_token_version" {
  description = "Secret Manager version of the Xendit callback token; see docs/operations.md for rotation."
  type        = string
  default     = "latest"
}

variable "identity_hash_key_version" {
  description = "Secret Manager version of the key of the free-trial identity hashes (docs/privacy.md); pin it."
  type        = string
  default     = "latest"
}

variable "pubsub_max_delivery_attempts" {
  description = "Deliveries of one Pub/Sub message to a function before it moves to the topic's dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.pubsub_max_delivery_attempts >= 5 && var.pubsub_max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts before dead-lettering."
  }
}

variable "pubsub_min_retry_delay" {
  description = "First back-off between redeliveries of a failed Pub/Sub message."
  type        = string
  default     = "10s"
}

variable "pubsub_max_retry_delay" {
  description = "Longest back-off between redeliveries of a failed Pub/Sub message."
  type        = string
  default     = "600s"
}

variable "queue_max_dispatches_per_second" {
  description = "Cloud Tasks dispatch rate for queues whose manifest entry names none."
  type        = number
  default     = 50
}

variable "queue_max_concurrent_dispatches" {
  description = "Cloud Tasks in-flight limit for queues whose manifest entry names none; stays under one task function's capacity (max instances x concurrency in infra/functions.tf, 4 x 10), so a burst waits in the queue rather than being refused."
  type        = number
  default     = 30
}

variable "scheduler_time_zone" {
  description = "Time zone of the manifest's cron schedules (the business runs on Jakarta time)."
  type        = string
  default     = "Asia/Jakarta"
}

variable "public_client_api" {
  description = "HALO_PUBLIC_CLIENT_API: true sends Firestore writes and Pub/Sub publishes through the client libraries' public API instead of the faster path that uses their private attributes (docs/operations.md, 'The client-library switch'). Flip it when a library upgrade breaks the fast path."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (`projects/PROJECT/notificationChannels/ID`) every alert policy pages: the on-call engineer. Create them once in the console or with `gcloud beta monitoring channels create` (docs/operations.md, Alerts). Empty: the policies exist and show incidents, but page nobody."
  type        = list(string)
  default     = []
}

variable "crisis_notification_channels" {
  description = "Channels paged, besides notification_channels, for the two crisis policies (an alert unacknowledged for 5 minutes, a signal with no admin on duty): whoever leads trust and safety."
  type        = list(string)
  default     = []
}

variable "server_error_percent" {
  description = "Percent of a function's requests answered 5xx over 5 minutes that pages."
  type        = number
  default     = 5
}

variable "outbox_backlog_alert_s" {
  description = "Age in seconds of the oldest unpublished outbox row that pages (the sweep runs every minute, the retry task within seconds)."
  type        = number
  default     = 300
}

variable "task_retry_alert_count" {
  description = "Retries of one task handler within 5 minutes, sustained for 10 minutes, that page."
  type        = number
  default     = 20
}

variable "receipt_merchant" {
  description = "What a client's receipt prints about the seller: legal name, registered address, NPWP, and the PPN rate contained in prices (0: no tax line). Placeholders until set."
  type = object({
    name             = string
    address          = string
    npwp             = string
    ppn_rate_percent = number
  })
  default = {
    name             = "Halo Bestie"
    address          = "Jakarta, Indonesia"
    npwp             = "00.000.000.0-000.000"
    ppn_rate_percent = 0
  }
}
