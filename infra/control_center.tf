# How the control center (a browser SPA) reaches the admin functions in production: through its own server, a
# Cloud Run service that serves the SPA and forwards /api/<admin function> to that function with a Google ID token of
# its service account. docs/control-center.md says why this and not IAP, and what the server does on each call.
#
# The admin functions stay as functions.tf makes them: ingress ALLOW_INTERNAL_AND_GCLB, invoker
# var.control_center_invoker, which is this service's account (`serviceAccount:control-center@PROJECT...`). The
# server's calls count as internal because they leave through the VPC (Direct VPC egress, all traffic) from a subnet
# with Private Google Access.
#
# The image is the control center team's (their SPA and the forwarding server, built by their CI); until
# var.control_center_image is set, only the account, the subnet and the grants exist.

variable "control_center_image" {
  description = "The control center's container image (its SPA and the server forwarding /api/<admin function>), e.g. `asia-southeast2-docker.pkg.dev/PROJECT/control-center/app:1.4.0`; null deploys no service yet."
  type        = string
  default     = null
}

variable "control_center_subnet_cidr" {
  description = "An unused range in the VPC for the control center server's Direct VPC egress (/26 or larger; Cloud Run takes addresses from it as it scales)."
  type        = string
  default     = "10.8.16.0/26"
}

variable "control_center_max_instances" {
  description = "Upper bound on the control center server's instances (a few operators)."
  type        = number
  default     = 3
}

locals {
  admin_functions       = { for name, spec in local.functions : name => spec if spec.trigger == "admin" }
  control_center_member = "serviceAccount:${google_service_account.control_center.email}"
}

# What the control center's server runs as, and the only identity the admin functions admit.
resource "google_service_account" "control_center" {
  account_id   = "control-center"
  display_name = "Halo Bestie control center (forwards admins' calls to the admin functions)"
}

# The admin functions admit var.control_center_invoker (functions.tf); the server's calls reach them only when
# that is this account.
check "control_center_is_the_admin_invoker" {
  assert {
    condition     = var.control_center_invoker == local.control_center_member
    error_message = "control_center_invoker should be ${local.control_center_member}: the control center's server calls the admin functions as that account (docs/control-center.md)."
  }
}

# Egress from here is routed into the VPC, so calls to the admin functions' run.app URLs are internal traffic, which
# their ALLOW_INTERNAL_AND_GCLB ingress accepts; Private Google Access carries them to Google's front end.
resource "google_compute_subnetwork" "control_center" {
  name                     = "halo-control-center"
  region                   = var.region
  network                  = google_compute_network.halo.id
  ip_cidr_range            = var.control_center_subnet_cidr
  private_ip_google_access = true
}

resource "google_cloud_run_v2_service" "control_center" {
  count = var.control_center_image == null ? 0 : 1

  name     = "control-center"
  location = var.region
  # Operators open the SPA from anywhere; every forwarded call still needs an admin's Firebase ID token.
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = false

  template {
    service_account = google_service_account.control_center.email

    scaling {
      min_instance_count = 0
      max_instance_count = var.control_center_max_instances
    }

    vpc_access {
      egress = "ALL_TRAFFIC"
      network_interfaces {
        network    = google_compute_network.halo.id
        subnetwork = google_compute_subnetwork.control_center.id
      }
    }

    containers {
      image = var.control_center_image

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }

      # Where each admin function is (its Cloud Run URL, also the audience of the ID token the server mints for it).
      # The server forwards /api/<name> for these names and nothing else.
      env {
        name  = "HALO_ADMIN_FUNCTIONS"
        value = jsonencode({ for name, _ in local.admin_functions : name => google_cloudfunctions2_function.function[name].service_config[0].uri })
      }
      # The Firebase project whose ID tokens the server checks (role claim admin) before forwarding.
      env {
        name  = "HALO_FIREBASE_PROJECT"
        value = var.project_id
      }
    }
  }

  depends_on = [google_project_service.api]
}

# The SPA and its /api are public at the network and IAM level, like the app-facing functions: the admin functions
# behind it authenticate every call themselves (an admin's Firebase ID token, revocation checked).
resource "google_cloud_run_v2_service_iam_member" "control_center_public" {
  count = var.control_center_image == null ? 0 : 1

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.control_center[0].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

output "control_center_url" {
  description = "Where operators open the control center (map a domain to it); its API is <url>/api/<admin function>."
  value       = var.control_center_image == null ? null : google_cloud_run_v2_service.control_center[0].uri
}

output "control_center_service_account" {
  description = "Set control_center_invoker to serviceAccount:<this> so the admin functions admit the control center."
  value       = google_service_account.control_center.email
}
