"""Use cases: one transaction each, ports passed in."""
