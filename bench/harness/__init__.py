"""The benchmark harness behind ``bench/run.py``: peers, workloads, statistics and the report."""
