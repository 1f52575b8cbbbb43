"""Benchmarks. Run them all with `make bench`; results go to bench/RESULTS.md."""
