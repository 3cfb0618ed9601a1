# Cloud SQL has a private IP only; the functions reach it (and nothing else) through a Serverless VPC Access
# connector. Cloud Functions (2nd gen) deployed through the Functions API cannot use Direct VPC egress.
resource "google_compute_network" "halo" {
  name                    = "halo"
  auto_create_subnetworks = false

  depends_on = [google_project_service.api]
}

# The range Google peers into the VPC for Cloud SQL's private IPs (private services access).
resource "google_compute_global_address" "private_services" {
  name          = "halo-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.halo.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.halo.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
  # Removing the peering fails while Cloud SQL still uses it; abandoning lets `destroy` finish in order.
  deletion_policy = "ABANDON"
}

resource "google_vpc_access_connector" "functions" {
  name          = "halo-functions"
  region        = var.region
  network       = google_compute_network.halo.name
  ip_cidr_range = var.connector_cidr
  # Only database traffic crosses it (egress is PRIVATE_RANGES_ONLY), so the smallest machines suffice.
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 4
}
