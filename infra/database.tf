# PostgreSQL is the system of record: private IP only, IAM database authentication (no passwords in the functions),
# point-in-time recovery, and protection against deletion both in Terraform and in the API.
resource "google_sql_database_instance" "halo" {
  name                = var.db_instance_name
  region              = var.region
  database_version    = "POSTGRES_15"
  deletion_protection = true

  settings {
    tier                        = var.db_tier
    edition                     = "ENTERPRISE"
    availability_type           = var.db_availability_type
    deletion_protection_enabled = true
    disk_autoresize             = true

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.halo.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      # 19:00 UTC is 02:00 in Jakarta, the quietest hour for a chat service.
      start_time                     = "19:00"
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = 30
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7
      hour         = 19
      update_track = "stable"
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    database_flags {
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }

    # Statements are grouped by shape; pg8000 binds every parameter, so no value reaches Query Insights.
    insights_config {
      query_insights_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.private_services]

  lifecycle {
    # The connection budget (infra/functions.tf, trigger_class): every function at its max instances must still leave
    # the reserve free, or PostgreSQL refuses connections ("too many clients") exactly when traffic peaks.
    precondition {
      condition     = local.db_connections_needed <= var.db_max_connections - var.db_reserved_connections
      error_message = "The functions may open more PostgreSQL connections than db_max_connections less db_reserved_connections: lower max instances or pool size in infra/functions.tf, or raise db_max_connections (and db_tier)."
    }
  }
}

resource "google_sql_database" "halo" {
  name     = "halo"
  instance = google_sql_database_instance.halo.name
}

# The functions log in as their own service account; Cloud SQL names such a user without ".gserviceaccount.com".
resource "google_sql_user" "functions" {
  name     = trimsuffix(google_service_account.functions.email, ".gserviceaccount.com")
  instance = google_sql_database_instance.halo.name
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}
