locals {
  repository_root = "${path.module}/.."

  # Exactly what the functions import at run time: main.py finds every function, requirements.txt is what the
  # Python buildpack installs. Tests, emulators and infra stay out of the image. The packaged requirements.txt holds
  # requirements.lock's content (see data.archive_file.source), not the human pins of the repository's file.
  source_files = sort([
    for file in setunion(
      fileset(local.repository_root, "main.py"),
      fileset(local.repository_root, "requirements.txt"),
      fileset(local.repository_root, "{functions,shared}/**"),
    ) : file if !strcontains(file, "__pycache__")
  ])

  # One sizing per trigger class. Concurrency above 1 needs a whole vCPU, hence cpu = "1"; 512M holds firebase-admin
  # and the gRPC clients with room for the concurrent requests.
  #
  # PostgreSQL connections are the scarce resource: every function is its own service, so each class's
  # max_instances x connections per instance counts once per function of the class. An instance never holds more
  # than db_pool_size connections (HALO_DB_POOL_SIZE: the pool's cap, idle and in use together); a request beyond
  # them waits up to HALO_DB_POOL_WAIT_S for one, then answers 503 with Retry-After. So concurrency is free to be
  # what the CPU allows: a request holds its connection only for its statements (a few ms), never across a call to
  # Firestore, Pub/Sub or Xendit. The sum of max_instances x db_pool_size over all functions must fit
  # var.db_max_connections less var.db_reserved_connections: local.db_connections_needed below, refused by a
  # precondition on the Cloud SQL instance and checked by tests/unit/test_deployment_agrees.py.
  trigger_class = {
    # App-facing: I/O-bound handlers share an instance 40 at a time; 3 connections serve them (a chat_send holds
    # one for ~1 ms, so one instance's connections carry far more than its one vCPU can send). min_instances is what
    # a warm function of the class keeps (see min_instance_count below).
    http = {
      memory          = "512M"
      cpu             = "1"
      concurrency     = 40
      db_pool_size    = 3
      timeout_seconds = 60
      min_instances   = var.http_min_instances
      max_instances   = 6
      ingress         = "ALLOW_ALL"
    }
    # Control center: a few operators tolerate a cold start; listings and reports may take up to two minutes.
    admin = {
      memory          = "512M"
      cpu             = "1"
      concurrency     = 10
      db_pool_size    = 2
      timeout_seconds = 120
      min_instances   = 0
      max_instances   = 2
      ingress         = "ALLOW_INTERNAL_AND_GCLB"
    }
    # Xendit retries a callback that fails or times out, so it keeps no warm instance.
    webhook = {
      memory          = "512M"
      cpu             = "1"
      concurrency     = 20
      db_pool_size    = 2
      timeout_seconds = 60
      min_instances   = 0
      max_instances   = 4
      ingress         = "ALLOW_ALL"
    }
    # Timers fire in bursts (sessions ending on the hour), each a short re-check; only Cloud Tasks (internal) calls.
    # A refused dispatch (every instance busy) is retried by the queue, whose in-flight limit stays under 4 x 10.
    task = {
      memory          = "512M"
      cpu             = "1"
      concurrency     = 10
      db_pool_size    = 3
      timeout_seconds = 60
      min_instances   = 0
      max_instances   = 4
      ingress         = "ALLOW_INTERNAL_ONLY"
    }
    # Events (the pairing blast) fan out to many writes and pushes, hence two minutes; only Eventarc (internal) calls.
    # A push refused while every instance is busy is redelivered with the subscription's back-off.
    pubsub = {
      memory          = "512M"
      cpu             = "1"
      concurrency     = 8
      db_pool_size    = 3
      timeout_seconds = 120
      min_instances   = 0
      max_instances   = 4
      ingress         = "ALLOW_INTERNAL_ONLY"
    }
  }

  # PostgreSQL connections all functions may hold at once, at their max instances (see trigger_class): the pool
  # caps each instance at db_pool_size, whatever its concurrency.
  db_connections_needed = sum([
    for name, spec in local.functions :
    local.trigger_class[spec.trigger].max_instances * local.trigger_class[spec.trigger].db_pool_size
  ])

  # Who may call each trigger class. App-facing functions and the webhook are public at the network and IAM level
  # because they authenticate every call themselves (a Firebase ID token; Xendit's x-callback-token).
  invoker = {
    http    = "allUsers"
    webhook = "allUsers"
    admin   = var.control_center_invoker
    task    = "serviceAccount:${google_service_account.tasks_invoker.email}"
    pubsub  = "serviceAccount:${google_service_account.eventarc.email}"
  }

  # The names shared/config.py reads (prefix HALO_); every function gets the same set.
  runtime_environment = {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    HALO_REGION                = var.region
    HALO_CLOUD_SQL_INSTANCE    = google_sql_database_instance.halo.connection_name
    HALO_DB_NAME               = google_sql_database.halo.name
    HALO_DB_USER               = google_sql_user.functions.name
    HALO_FUNCTIONS_BASE_URL    = local.functions_base_url
    HALO_TASKS_LOCATION        = var.region
    HALO_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    HALO_PUSH_SERVICE_ACCOUNT  = google_service_account.eventarc.email
    HALO_FCM_USE_CREDENTIALS   = "true"
    HALO_PUBLIC_CLIENT_API     = tostring(var.public_client_api)
    # What receipts print about the seller (billing_receipt; docs/operations.md "Receipts").
    HALO_RECEIPT_MERCHANT_NAME    = var.receipt_merchant.name
    HALO_RECEIPT_MERCHANT_ADDRESS = var.receipt_merchant.address
    HALO_RECEIPT_MERCHANT_NPWP    = var.receipt_merchant.npwp
    HALO_RECEIPT_PPN_RATE_PERCENT = tostring(var.receipt_merchant.ppn_rate_percent)
  }
}

# Each release is its own object, named by its content hash. Re-applying an older commit uploads the same bytes
# under the same name again, so a roll back never depends on what the bucket still holds.
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-halo-functions-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

# Built from file contents, not from the folder: entries carry no timestamps, so the zip (and so its hash, and so a
# redeploy) changes only when the code does, and nothing outside local.source_files can slip in.
#
# The buildpack installs whatever file is named requirements.txt. The repository's requirements.txt holds the human
# pins (direct dependencies only, for the local virtualenv with constraints.txt); `make lock` resolves them into
# requirements.lock, every package at the version the tests ran, with the hashes of its files. That lock is what
# goes into the zip under the name requirements.txt, so pip installs in hash-checking mode exactly what was tested
# (tests/unit/test_lock.py fails when the lock and the pins disagree).
data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/.terraform/function-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.value
      content  = source.value == "requirements.txt" ? file("${local.repository_root}/requirements.lock") : file("${local.repository_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket_object" "source" {
  name   = "source/${data.archive_file.source.output_sha256}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  name        = each.key
  location    = var.region
  description = "Halo Bestie ${each.value.trigger} function ${each.key}"
  labels = {
    app     = "halo-bestie"
    trigger = each.value.trigger
  }

  build_config {
    runtime         = "python311"
    entry_point     = each.key
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    # min_instance_count: warm only the functions the manifest marks warm (functions/manifest.py: the steps a person
    # waits on in a session); every other function scales to zero. A warm instance costs ~$9.7 a month idle, a cold
    # start a waiting person 2.5-6 s: docs/operations.md "Warm instances".
    available_memory                 = local.trigger_class[each.value.trigger].memory
    available_cpu                    = local.trigger_class[each.value.trigger].cpu
    max_instance_request_concurrency = local.trigger_class[each.value.trigger].concurrency
    timeout_seconds                  = local.trigger_class[each.value.trigger].timeout_seconds
    min_instance_count               = each.value.warm ? local.trigger_class[each.value.trigger].min_instances : 0
    max_instance_count               = local.trigger_class[each.value.trigger].max_instances
    ingress_settings                 = local.trigger_class[each.value.trigger].ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.functions.email

    # Only private ranges (Cloud SQL) go through the connector; Google APIs and Xendit are reached directly.
    vpc_connector                 = google_vpc_access_connector.functions.id
    vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"

    # Each class's own pool size on top of the settings every function shares.
    environment_variables = merge(local.runtime_environment, {
      HALO_DB_POOL_SIZE = tostring(local.trigger_class[each.value.trigger].db_pool_size)
    })

    dynamic "secret_environment_variables" {
      for_each = local.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.runtime[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger == "pubsub" ? [each.value.topic] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = google_pubsub_topic.topic[event_trigger.value].id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.eventarc.email
    }
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.build,
    google_project_iam_member.functions,
    # A revision whose secrets its account cannot read never becomes ready.
    google_secret_manager_secret_iam_member.functions_access,
  ]
}

# A 2nd-gen function is a Cloud Run service: invocation is `run.invoker` on that service.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = local.invoker[each.value.trigger]
}
