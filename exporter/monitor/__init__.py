"""Feature monitoring: the reference baseline, row encoding and profiling, and each
window's data-quality and drift report."""
