"""Progress kept in the target: the progress tables, the low-water mark, the control session."""
