"""Pure domain logic: events in, totals and progress out. No asyncio, Kafka or Prometheus."""
