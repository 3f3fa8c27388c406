"""The intake: validates and re-keys the contract topics in batches over aiokafka, and
sends each batch on as one ledger-input record per destination partition."""
