# Every function, topic and queue comes from the manifest (functions/manifest.py) through functions.auto.json,
# which `make infra` regenerates and tests/unit/test_deployment_agrees.py keeps current: no name is typed here.
locals {
  manifest  = jsondecode(file("${path.module}/functions.auto.json"))
  functions = local.manifest.functions
  queues    = local.manifest.queues
  topics    = toset(local.manifest.topics)

  pubsub_functions    = { for name, spec in local.functions : name => spec if spec.trigger == "pubsub" }
  scheduled_functions = { for name, spec in local.functions : name => spec if spec.schedule != null }

  # Task handlers are called by Cloud Tasks at this base URL + "/<function name>", which is also the OIDC audience.
  functions_base_url = "https://${var.region}-${var.project_id}.cloudfunctions.net"
}

resource "google_project_service" "api" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com",
    "eventarc.googleapis.com",
    "fcm.googleapis.com",
    "firebase.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "identitytoolkit.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "vpcaccess.googleapis.com",
  ])

  project = var.project_id
  service = each.value
  # Other workloads in the project may use the same APIs; destroying this stack must not switch them off.
  disable_on_destroy = false
}

# Google creates the Pub/Sub service agent lazily; asking for it here makes it exist before IAM names it.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  project  = var.project_id
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.api]
}

resource "google_firebase_project" "this" {
  provider = google-beta
  project  = var.project_id

  depends_on = [google_project_service.api]
}
