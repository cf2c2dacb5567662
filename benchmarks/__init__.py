"""Benchmarks run by `make bench`; each writes its numbers into docs/benchmarks/."""
