"""Benchmarks of the tracker against a raw consumer and a peer framework (issue 7).

``python -m bench.run --help``. Nothing here is imported by the service. Where things are:

- run.py: the entry point, the phases in order;
- options.py: the command line and the sizes it picks (``--quick``);
- session.py: what the phases share: the broker, child processes, workers, HTTP client;
- phases/: one module per phase (throughput, latency, visibility, scale_out,
  time_to_ready, memory, profiling);
- report.py: the figures, the checks, the table and the final line;
- common.py: synthetic events, topics, producers, child processes, /metrics parsing;
- worker.py: a tracker worker as a child process;
- raw.py, peer.py: the baselines' child processes; proto.py: their line protocol;
- spy.py: the summary of py-spy's samples.
"""
