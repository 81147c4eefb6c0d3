"""Tools for tests, the demo and benchmarks: sandboxes, content comparison, workloads, fault points."""
