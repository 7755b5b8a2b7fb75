#!/bin/sh
# Regenerate the lock files from pyproject.toml (make lock). Every engineer adding a dependency
# adds it to pyproject.toml; the lead runs this once after merging.
#   requirements/dev.lock      every extra plus dev: what make test installs
#   requirements/service.lock  the service only: what the Dockerfile installs
#   requirements/bootstrap.lock uv, which installs the others (from requirements/bootstrap.in)
# torch resolves to the local CPU wheel 2.13.0+cpu (find-links in pip's configuration), and its
# hash is that wheel's; the CUDA build on PyPI never enters the lock.
set -eu
BIN=${BIN:-.venv/bin}
compile() {
    out=$1; shift
    "$BIN/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links "$@" --output-file "$out" "${SOURCE:-pyproject.toml}"
    # The `all` extra names hwlat itself; the project is installed from the work tree, not
    # from the lock (and a local path has no hash).
    sed -i '/^# WARNING: pip install will require/d; /^# Consider using a hashable URL/d' "$out"
    sed -i '/^hwlat @ file:/,/^    # via hwlat (pyproject.toml)$/d' "$out"
}
mkdir -p requirements
compile requirements/dev.lock --extra all --extra dev
compile requirements/service.lock --extra service
SOURCE=requirements/bootstrap.in compile requirements/bootstrap.lock
grep -q '^torch==2.13.0+cpu ' requirements/dev.lock || {
    echo "error: torch is not the local 2.13.0+cpu wheel in requirements/dev.lock" >&2
    exit 1
}
