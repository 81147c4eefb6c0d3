"""Which transactions may be applied together: conflict keys, dependency modes, the scheduler."""
