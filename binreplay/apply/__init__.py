"""Applying transactions on the target: statements per apply mode, one session, the worker pool."""
