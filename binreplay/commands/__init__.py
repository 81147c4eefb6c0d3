"""The commands beside replay: plan, verify, status."""
