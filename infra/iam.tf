# One identity per job, each holding only what that job does. Grants that can be scoped to one resource (a topic,
# a queue, a secret, a service account, a function) are made there rather than on the project.

# What the functions run as.
resource "google_service_account" "functions" {
  account_id   = "halo-functions"
  display_name = "Halo Bestie functions (runtime)"
}

# What Cloud Tasks signs its OIDC tokens as when it calls a task handler.
resource "google_service_account" "tasks_invoker" {
  account_id   = "halo-tasks-invoker"
  display_name = "Halo Bestie Cloud Tasks invoker"
}

# What Eventarc's push subscriptions sign their OIDC tokens as when they deliver a Pub/Sub message.
resource "google_service_account" "eventarc" {
  account_id   = "halo-eventarc"
  display_name = "Halo Bestie Eventarc (Pub/Sub push) invoker"
}

# What Cloud Build runs as when it turns the source zip into a function image; the project's default compute
# account would otherwise build with Editor.
resource "google_service_account" "build" {
  account_id   = "halo-functions-build"
  display_name = "Halo Bestie functions build"
}

# Cloud Scheduler needs no account of its own: a Pub/Sub target is published by Google's Cloud Scheduler service
# agent, which holds publish rights through its built-in role.

resource "google_project_iam_member" "functions" {
  for_each = toset([
    "roles/cloudsql.client",              # open connections through the Cloud SQL connector
    "roles/cloudsql.instanceUser",        # log in as the IAM database user
    "roles/datastore.user",               # write the Firestore projection the apps listen to
    "roles/firebaseauth.admin",           # set role custom claims, revoke sessions on account takeover
    "roles/firebasecloudmessaging.admin", # send pushes through the FCM v1 API (its narrowest role)
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.functions.email}"
}

# The outbox publishes to the manifest's topics and to nothing else.
resource "google_pubsub_topic_iam_member" "functions_publish" {
  for_each = google_pubsub_topic.topic

  topic  = each.value.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.functions.email}"
}

# Services schedule timers (create) and cancel them when the world moves on (delete), queue by queue.
resource "google_cloud_tasks_queue_iam_member" "functions_enqueue" {
  for_each = google_cloud_tasks_queue.queue

  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_cloud_tasks_queue_iam_member" "functions_cancel" {
  for_each = google_cloud_tasks_queue.queue

  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.taskDeleter"
  member   = "serviceAccount:${google_service_account.functions.email}"
}

# A task carries an OIDC token minted for the tasks invoker; creating it needs actAs on that one account only.
resource "google_service_account_iam_member" "functions_act_as_tasks_invoker" {
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.functions.email}"
}

# Projects created before April 2021 need the Pub/Sub service agent to mint the push subscriptions' OIDC tokens.
resource "google_service_account_iam_member" "pubsub_signs_for_eventarc" {
  service_account_id = google_service_account.eventarc.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Reads the source zip, writes the image to Artifact Registry and the build log: the role Google documents for a
# user-chosen Cloud Functions build account.
resource "google_project_iam_member" "build" {
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}
