"""What a run tells its user: the summary, the progress bar, JSON lines."""
