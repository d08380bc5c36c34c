"""Benchmarks: measured comparisons run against the fake servers; not part of the product."""
