# Where the production environment's Terraform state lives (created once by hand: docs/operations.md, state bucket).
bucket = "halo-bestie-prod-tfstate"
