"""hwlat: hardware latency profiling and per-layer runtime predictors for NAS.

This package holds only the console entry point; the components live in ``models``,
``device_agents`` and ``latency_service``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hwlat")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
