"""``python -m tests.emulated_phone HOME [N]``: plug N emulated phones into HOME.

Prints the two exports that point a shell's ``adb`` at them, e.g. to try ``hwlat agent android``
by hand without a phone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.emulated_phone.fixtures import install_fake_adb
from tests.emulated_phone.state import HOME_ENV, create_phone, phones


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2 or (len(argv) == 2 and not argv[1].isdigit()):
        print(__doc__, file=sys.stderr)
        return 2
    home = Path(argv[0]).resolve()
    home.mkdir(parents=True, exist_ok=True)
    first = len(phones(home)) + 1
    for number in range(first, first + (int(argv[1]) if len(argv) == 2 else 1)):
        create_phone(home, f"EMU{number:04d}")
    adb = install_fake_adb(home / ".bin")
    print(f"export {HOME_ENV}={home}")
    print(f"export PATH={adb.parent}:$PATH")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
