# Only the secrets' containers live here; their values are added out of band (docs/operations.md), so no secret
# ever enters the Terraform state or the repository.
locals {
  secret_environment = {
    HALO_XENDIT_SECRET_KEY = {
      secret_id = "xendit-secret-key"
      version   = var.xendit_secret_key_version
    }
    HALO_XENDIT_CALLBACK_TOKEN = {
      secret_id = "xendit-callback-token"
      version   = var.xendit_callback_token_version
    }
    # Keys the hashes binding a free trial to a verified phone or email (docs/privacy.md); never rotated in place,
    # since a new key forgets every trial bound so far.
    HALO_IDENTITY_HASH_KEY = {
      secret_id = "identity-hash-key"
      version   = var.identity_hash_key_version
    }
  }
}

resource "google_secret_manager_secret" "runtime" {
  for_each = local.secret_environment

  secret_id = each.value.secret_id

  # Payment credentials stay in the region the service runs in.
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_iam_member" "functions_access" {
  for_each = google_secret_manager_secret.runtime

  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}
