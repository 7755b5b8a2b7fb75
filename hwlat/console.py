"""The ``hwlat`` console script's entry point.

The script is installed with every install of the package, but ``pip install 'hwlat[client]'``
brings only the client's dependencies: without the command line's own, ``hwlat`` says which
extra to install in one line instead of a traceback.
"""

from __future__ import annotations

import sys

# Top-level modules of the cli extra that loading hwlat.cli needs (typer brings click).
CLI_MODULES = frozenset({"typer", "click", "rich", "shellingham"})


def main() -> None:
    try:
        from hwlat.cli import main as run
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in CLI_MODULES:
            raise
        sys.exit(
            f"error: the hwlat command needs the cli extra ({error.name} is not installed): "
            "pip install 'hwlat[cli]'"
        )
    run()
