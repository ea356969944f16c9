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
bash scripts/test-box.sh --arch arm64 >/dev/null
bash scripts/local-blade.sh up
npx vitest run "$@"
