"""Pipeline benchmarks: `make bench` runs bench/run.py and records the figures in BENCHMARKS.md.

`benchmarks/` holds one module per benchmark; beside it, what they share: the harness (database,
settings, clusters, batches), the processes it starts, their measurement, the web server and its
client, the inputs uploaded, and the report.
"""
