"""Pipeline benchmarks: `make bench` runs bench/run.py and records the figures in BENCHMARKS.md."""
