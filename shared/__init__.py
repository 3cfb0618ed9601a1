"""Halo Bestie's own package: domain rules, use cases, adapters and the plumbing they share."""
