#!/usr/bin/env bash
# The test command (npm test): installs what the tests need, builds, and runs every test,
# unit and integration, against real sshd, libvirtd, qemu-img and libguestfs on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
# The test boxes are real and slow to build: scripts/test-box.sh keeps them in /var/cache/shien, by recipe hash.
bash scripts/test-box.sh >/dev/null
bash scripts/test-box.sh --arch amd64 --firmware efi >/dev/null
bash scripts/test-box.sh --arch arm64 >/dev/null
bash scripts/local-blade.sh up
# Set up once, here: the tests read blade.json instead of running `up` again from each project.
export SHIEN_LOCAL_BLADE_UP=1

# The blade's tests and the rest run side by side, each project a file at a time (vitest runs the
# projects of one process one after the other). Arguments (file filters, -t) go to both; each
# line says which project printed it.
run_project() {
  local name=$1
  shift
  npx vitest run --project "$name" --passWithNoTests "$@" 2>&1 | sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}
run_project blade "$@" &
blade=$!
run_project local "$@" &
local_=$!
status=0
wait "$blade" || status=1
wait "$local_" || status=1
[ "$status" -eq 0 ] && echo "npm test: both projects passed" || echo "npm test: a project failed (search the log for FAIL)"
exit "$status"
