# Variables of the production environment (`make deploy ENV=prod`). Example values: put your project's here before
# the first deploy. No secrets belong in this file: the Xendit keys live in Secret Manager (docs/operations.md).
project_id             = "halo-bestie-prod"
region                 = "asia-southeast2"
control_center_invoker = "serviceAccount:control-center@halo-bestie-prod.iam.gserviceaccount.com"

# Cloud Monitoring channels the alerts page, e.g. "projects/halo-bestie-prod/notificationChannels/1234567890"
# (`gcloud beta monitoring channels list`). Empty pages nobody: fill both before going live.
notification_channels        = []
crisis_notification_channels = []

# Pin secret versions to roll every function onto a new value in one deploy (docs/operations.md, rotating secrets).
xendit_secret_key_version     = "latest"
xendit_callback_token_version = "latest"
