"""The NAS search engine: Single-Path NAS to a latency target and an NSGA-II Pareto search.

A client of the latency service (through :mod:`nas.latency` only), built on :mod:`models`.
It never imports ``latency_service`` or ``device_agents``.
"""
