"""zart's benchmark suite: `python -m bench [--quick] [workload ...]` (or `make bench`).

Every run starts its own PostgreSQL (fsync on, so commits cost what they cost in production) and Redis on
free local ports, measures each workload beside its baselines, prints one table and writes bench/RESULTS.md.
"""
