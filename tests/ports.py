"""Ports for the brokers, controllers and web servers the tests and the benchmark start.

A port handed out stays unavailable to others until its user binds it: ephemeral-port-
reserve leaves it in TIME_WAIT, so the kernel hands it to no bind(0) or outgoing
connection, while a server binding it with SO_REUSEADDR still can - as Kafka (Java sets it
on server sockets on Linux), the worker (asyncio sets it) and Prometheus (Go sets it) do.
The hold lasts as long as TIME_WAIT, a minute on Linux: bind within that."""

from __future__ import annotations

from ephemeral_port_reserve import reserve

HOST = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on and nothing else will be given."""
    return int(reserve(HOST))


def free_run(count: int) -> int:
    """The first of ``count`` consecutive ports, each held as ``free_port`` holds one (for
    settings that count ports up from a first one)."""
    for _ in range(50):
        first = free_port()
        if first + count > 65536:
            continue
        # reserve() falls back to another port when the one asked for is in use.
        if all(int(reserve(HOST, first + offset)) == first + offset
               for offset in range(1, count)):
            return first
    raise AssertionError(f"no {count} consecutive free ports")
