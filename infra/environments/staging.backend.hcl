# Where the staging environment's Terraform state lives (created once by hand: docs/operations.md, state bucket).
bucket = "halo-bestie-staging-tfstate"
