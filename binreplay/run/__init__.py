"""The replay run: options, preflight, the coordinator that ties the stages together."""
