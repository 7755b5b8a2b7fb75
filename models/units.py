"""Units hwlat reports in, defined once for the agents, the predictor, the service and the
search."""

from __future__ import annotations

from typing import Final

# MB wherever hwlat reports memory: 2^20 bytes, as TFLite's benchmark_model prints it (it
# divides kilobytes by 1024.0 and calls the result MB).
BYTES_PER_MB: Final = 1 << 20
