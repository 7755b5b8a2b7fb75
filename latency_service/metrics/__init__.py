"""Prometheus metrics: request counts and latencies, batch sizes, queue state, agents."""
