"""Benchmarks: ``make bench`` (python -m bench) runs them all and updates docs/benchmarks.md."""
