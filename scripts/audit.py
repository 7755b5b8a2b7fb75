"""pip-audit over a lock file (make audit, part of make test), saying plainly what it covered.

    .venv/bin/python -m scripts.audit requirements/dev.lock [--require-data]

Fails on any known vulnerability. pip-audit skips a package whose advisory data it cannot fetch
and still reports "no known vulnerabilities"; this says how many packages were really audited,
and with --require-data fails when any was not (where PyPI's JSON API is not reachable, as on
machines that reach only the package index, nothing can be audited).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("lock", type=Path)
    parser.add_argument("--require-data", action="store_true")
    args = parser.parse_args()
    result = subprocess.run(
        [
            str(PIP_AUDIT),
            *("--disable-pip", "--progress-spinner", "off", "-f", "json"),
            *("-r", str(args.lock)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        sys.exit(f"pip-audit failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    packages = report["dependencies"]
    skipped = [p for p in packages if "skip_reason" in p]
    vulnerable = [p for p in packages if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            print(f"{package['name']} {package['version']}: {vuln['id']} (fixed in {fixed})")
    audited = len(packages) - len(skipped)
    print(
        f"pip-audit over {args.lock}: {audited} of {len(packages)} packages audited, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    if skipped:
        print(
            f"WARNING: {len(skipped)} packages not audited, e.g. {skipped[0]['skip_reason']} "
            "(pip-audit needs PyPI's JSON API, pypi.org/pypi/<name>/<version>/json)",
            file=sys.stderr,
        )
    if vulnerable or (skipped and args.require_data):
        sys.exit(1)


if __name__ == "__main__":
    main()
