"""An architecture as text: its candidate indices, comma-separated (``0,1,4,2``).

The one spelling for every place that writes or reads one: command-line arguments and files,
the measurement table's column, CSV exports, dashboards and reports.
"""

from __future__ import annotations

from collections.abc import Iterable

from models.search_space import InvalidArchitecture

SEPARATOR = ","


def format_architecture(architecture: Iterable[int]) -> str:
    """``[0, 1, 4]`` -> ``"0,1,4"``."""
    return SEPARATOR.join(str(int(i)) for i in architecture)


def parse_architecture(text: str) -> list[int]:
    """``"0,1,4"`` -> ``[0, 1, 4]``; :class:`InvalidArchitecture` for anything else. Whether the
    indices fit a space is the space's to check (``SearchSpace.validate``)."""
    try:
        return [int(part) for part in text.split(SEPARATOR)]
    except ValueError:
        raise InvalidArchitecture(
            f"{text!r} is not comma-separated integers: an architecture is comma-separated "
            "candidate indices, one per searchable layer, e.g. 0,1,3,2 (see `hwlat space show "
            "NAME`)"
        ) from None
