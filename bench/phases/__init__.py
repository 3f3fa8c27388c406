"""The benchmark's phases, one module each (bench/run.py runs them in order):

- throughput: the input events read by the raw consumer, the peer and one tracker worker;
- latency: steady load, broker append -> table update (tracker and both baselines);
- visibility: steady load with probes, send -> value visible at the tracker's /metrics;
- scale_out: two tracker workers of one app on the same number of events;
- time_to_ready: cold start, and restart with keys in the changelogs (tracker and peer);
- memory: peak resident memory of every process;
- profiling: ``--profile``, py-spy on the tracker during its throughput phase.
"""
