output "function_urls" {
  description = "Each function's HTTPS endpoint (the apps use the app-facing ones; the others refuse outside callers)."
  value       = { for name, function in google_cloudfunctions2_function.function : name => function.url }
}

output "functions_base_url" {
  description = "What the apps and the control center prefix to a function name."
  value       = local.functions_base_url
}

output "cloud_sql_instance" {
  description = "Connection name for the Cloud SQL connector (HALO_CLOUD_SQL_INSTANCE), e.g. for the migration job."
  value       = google_sql_database_instance.halo.connection_name
}

output "db_user" {
  description = "The IAM database user the functions and the migration job log in as (HALO_DB_USER)."
  value       = google_sql_user.functions.name
}

output "runtime_service_account" {
  description = "The functions' service account; the migration job runs as it too."
  value       = google_service_account.functions.email
}

output "vpc_connector" {
  description = "The Serverless VPC Access connector a migration job needs to reach Cloud SQL's private IP."
  value       = google_vpc_access_connector.functions.id
}

output "dead_letter_subscriptions" {
  description = "Per topic, the subscription holding its dead letters."
  value       = { for topic, subscription in google_pubsub_subscription.dead_letter : topic => subscription.name }
}

output "db_name" {
  description = "The PostgreSQL database the functions and the migration job use (HALO_DB_NAME)."
  value       = google_sql_database.halo.name
}
