# Variables of the staging environment (`make deploy ENV=staging`). Example values: put your project's here before
# the first deploy. No secrets belong in this file: the Xendit keys live in Secret Manager (docs/operations.md).
project_id             = "halo-bestie-staging"
region                 = "asia-southeast2"
control_center_invoker = "serviceAccount:control-center@halo-bestie-staging.iam.gserviceaccount.com"

# Staging keeps no warm instance and no standby database: a cold start or a zone outage costs nobody a session.
http_min_instances   = 0
db_availability_type = "ZONAL"

# Cloud Monitoring channels the alerts page (`gcloud beta monitoring channels list`); empty pages nobody.
notification_channels        = []
crisis_notification_channels = []
