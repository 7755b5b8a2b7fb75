#!/usr/bin/env bash
# What the test suite runs besides Python, from Debian's packages (make test calls this):
# - chromium: the browser tests drive it (Playwright's own browser download cannot reach its
#   servers from these machines);
# - qemu-user: the int8 tests run ONNX Runtime on emulated x86 CPUs without VNNI;
# - PostgreSQL's server binaries: when no server answers at HWLAT_TEST_POSTGRES_URL, the suite
#   starts a throwaway cluster of its own with them (tests/fixtures/postgres.py).
# Each is installed only when missing; installing needs root.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
command -v qemu-x86_64 >/dev/null || missing+=(qemu-user)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure_test_tools: missing ${missing[*]}; installing needs root;" \
         "run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure_test_tools: installing ${missing[*]}" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
test -x /usr/bin/chromium
command -v qemu-x86_64 >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
