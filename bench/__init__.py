"""Benchmarks of the tracker against a raw consumer and a peer framework (issue 7).

``python -m bench.run --help``. Nothing here is imported by the service.
"""
