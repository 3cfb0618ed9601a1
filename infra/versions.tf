terraform {
  # 1.5: `strcontains`, `terraform_data` and `import` blocks.
  required_version = ">= 1.5.0"

  # State lives in a GCS bucket created once by hand (see docs/operations.md); the bucket is passed at init with
  # `-backend-config=bucket=NAME` so this file names no project.
  backend "gcs" {
    prefix = "halo-bestie"
  }

  required_providers {
    # Exact pins: a provider upgrade is a reviewed change, never a side effect of `terraform init`.
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    # Service-agent identities (google_project_service_identity) exist only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.7.1"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
  # Firebase Rules and Firebase Management APIs refuse user credentials without a quota project.
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}
