"""Benchmarks that print their figures; each measures its own anchor in the same run."""
