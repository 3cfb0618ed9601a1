"""Terraform for the real deployment, fed by `functions.auto.json`, which `python -m infra.generate` writes."""
